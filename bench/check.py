"""``xprune check``: run the plugin contract on a tiny model before anyone submits.

For each declared granularity: the plugin runs, returns one finite tensor of the right
shape per site, gives identical scores twice under the same seed, and finishes within a
time budget. It runs on the requested backbone where the method applies to it at that
granularity, else on the built-in ViT (attention heads; transformer-only methods). Each failure has its own message so a contributor knows what to fix. Then the
soundness stage (:mod:`bench.soundness`) judges the scores on a small trained model.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from . import data, models, plugins, soundness
from .api import Method
from .errors import PluginError
from .scoring import run_method
from .spec import applicable

SEED = 0


@dataclass(frozen=True)
class Outcome:
    """One check of one plugin (at one granularity, where it applies)."""

    plugin: str
    check: str
    ok: bool
    message: str = ""
    verdict: soundness.Verdict | None = None  # set on soundness outcomes

    @property
    def blocking(self) -> bool:
        """A failed contract check fails ``xprune check``; a failed soundness check warns."""
        return not self.ok and self.verdict is None and not self.check.endswith("soundness")


class _Overrun(BaseException):
    """Raised by the alarm; a BaseException so plugin code's ``except Exception`` can't eat it."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt a plugin that runs far past its budget (a hang must not hang the check)."""
    def alarm(signum, frame):
        raise _Overrun()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def resolve(target: str) -> list[type[Method]]:
    """A registered method name or wildcard (``'*'``, ``lrp-*``), or a path to a plugin file
    (every plugin class in it)."""
    path = Path(target)
    if target.endswith(".py") or path.exists():
        if not path.is_file():
            raise PluginError(f"plugin file {target} not found")
        classes = plugins.load_file(path)
        if not classes:
            raise PluginError(f"{target}: defines no Method subclass with a name")
        return classes
    return [plugins.get(name).cls for name in plugins.catalogue().expand([target])]


def check_class(cls: type[Method], backbone: str = "smallcnn",
                budget: float = 30.0) -> list[Outcome]:
    """All checks for one plugin class, on an untrained backbone and the synthetic dataset."""
    problems = plugins.metadata_problems(cls)
    results = [Outcome(cls.name, "metadata", not problems, "; ".join(problems))]
    if problems:
        return results
    dataset = data.load(data.SYNTHETIC)
    batch = data.reference_batch(dataset, 4, SEED)
    built: dict[str, torch.nn.Module] = {}
    for granularity in cls.granularities:
        name = (backbone if applicable(backbone, granularity, getattr(cls, "architectures", None))
                else "vit")
        if name not in built:
            torch.manual_seed(SEED)
            built[name] = models.build(name, dataset.info.n_channels,
                                       dataset.info.n_classes).eval()
        outcomes = _check_granularity(cls, built[name], granularity, batch, budget)
        results += outcomes
        if all(o.ok for o in outcomes):
            results.append(_soundness(cls, granularity))
    return results


def _soundness(cls: type[Method], granularity: str) -> Outcome:
    """The soundness stage on the small trained model, as one outcome."""
    try:
        verdict = soundness.judge(cls, granularity)
    except PluginError as exc:
        return Outcome(cls.name, f"{granularity}: soundness", False, str(exc))
    detail = verdict.message or (
        f"zero-effect units ranked last; largest tie at the minimum "
        f"{100 * verdict.worst_tie:.1f}%" if verdict.zero_effect else
        f"not effect-based: tie check only (largest tie {100 * verdict.worst_tie:.1f}%)")
    return Outcome(cls.name, f"{granularity}: soundness", verdict.ok, detail, verdict)


def _check_granularity(cls, model, granularity, batch, budget) -> list[Outcome]:
    name = f"{granularity}"
    runs = []
    for _ in range(2):
        try:
            with _deadline(budget * 2):
                runs.append(run_method(cls, model, granularity, batch, SEED))
        except _Overrun:
            return [Outcome(cls.name, f"{name}: budget", False,
                            f"still running after {budget * 2:g} s (budget {budget:g} s): stopped")]
        except PluginError as exc:
            return [Outcome(cls.name, f"{name}: contract", False, str(exc))]
    (first, seconds), (second, _) = runs
    differing = [site for site in first if not torch.equal(first[site], second[site])]
    return [
        Outcome(cls.name, f"{name}: contract", True),
        Outcome(cls.name, f"{name}: deterministic", not differing,
                f"two runs with seed {SEED} differ at site {differing[0]!r}" if differing else ""),
        Outcome(cls.name, f"{name}: budget", seconds <= budget,
                f"took {seconds:.1f} s, over the budget of {budget:g} s" if seconds > budget else
                f"{seconds:.2f} s"),
    ]


def check(target: str, backbone: str = "smallcnn", budget: float = 30.0) -> list[Outcome]:
    """Resolve ``target`` and check every plugin class it names."""
    out: list[Outcome] = []
    for cls in resolve(target):
        out += check_class(cls, backbone, budget)
    return out
