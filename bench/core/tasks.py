"""Tasks and outcomes: what crosses between the coordinator and the processes that compute.

A task is a small frozen value that carries the frozen key it computes (a ``BaselineKey``,
``ScoreKey`` or ``Cell``), pickled as is through a worker's pipe or a Slurm job;
``bench.compute.runner.execute`` dispatches on its type and returns an :class:`Outcome`. Whether
``--cell-timeout`` bounds a task is a property of its type (``timed``). Importing this module
imports neither torch nor MLflow (the planner builds tasks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Union

from bench.core.axes import Granularity
from bench.core.spec import BaselineKey, Cell, ScoreKey


@dataclass(frozen=True)
class TrainBaseline:
    """Train one baseline (or find it cached). Result: its test scores (a dict)."""

    key: BaselineKey
    kind: ClassVar[str] = "baseline"
    timed: ClassVar[bool] = False  # training is legitimately long: a prerequisite, untimed

    @property
    def id(self) -> str:
        return self.key.hash

    @property
    def label(self) -> str:
        return f"train {self.key.dataset}/{self.key.backbone}"


@dataclass(frozen=True)
class JudgeSoundness:
    """Judge a method's scores on a small trained model (cached per method version and
    granularity; the model is trained beforehand as a baseline). Result: the verdict,
    ``pass`` or ``fail: reason``."""

    method: str
    granularity: Granularity
    timeout: float | None = None  # per scoring process; None: the default bound
    kind: ClassVar[str] = "soundness"
    timed: ClassVar[bool] = True  # it runs the plugin: a hang fails the verdict, not the matrix

    @property
    def id(self) -> str:
        return f"{self.method}-{self.granularity}"

    @property
    def label(self) -> str:
        return f"soundness {self.method}/{self.granularity}"


@dataclass(frozen=True)
class ComputeScores:
    """Score one baseline with one method (or find the scores cached) in a fresh scoring
    process bounded by ``timeout`` seconds (None: the backbone's default). Result: the
    seconds the plugin took."""

    key: ScoreKey
    timeout: float | None = None
    kind: ClassVar[str] = "scores"
    timed: ClassVar[bool] = True

    @property
    def id(self) -> str:
        return self.key.hash

    @property
    def label(self) -> str:
        base = self.key.baseline
        return f"score {base.dataset}/{base.backbone}/{self.key.method}/{self.key.granularity}"


@dataclass(frozen=True)
class RunCell:
    """Run one cell, top to bottom. Result: its record's ``metrics`` (a dict)."""

    cell: Cell
    kind: ClassVar[str] = "cell"
    timed: ClassVar[bool] = True

    @property
    def id(self) -> str:
        return self.cell.hash

    @property
    def label(self) -> str:
        return self.cell.label()


Task = Union[TrainBaseline, JudgeSoundness, ComputeScores, RunCell]


@dataclass(frozen=True)
class Outcome:
    """How a task ended, in the process that ran it: ``ok`` with the task type's ``result``
    and the conditions it ran under, or not ``ok`` with a one-line ``error``."""

    ok: bool
    seconds: float
    error: str | None = None
    threads: int | None = None  # torch threads of the process that computed
    device: dict[str, Any] | None = None  # bench.compute.device.describe of what it computed on
    determinism: dict[str, Any] | None = None  # bench.compute.device.configure's settings
    result: Any = None  # per task type: see each type's docstring

    @classmethod
    def failure(cls, error: str, seconds: float = 0.0) -> Outcome:
        """A task that did not finish (raised, died, overran, or a prerequisite failed)."""
        return cls(False, seconds, error)
