"""The coordinator: plan a matrix, run what is missing, write records, log MLflow.

Stages: baselines to train, then scores to compute, then cells. Stages are a scheduling
device only (each prerequisite is computed once, not by two workers at the same time);
``runner.run_cell`` works without them because every step is cached. A failed prerequisite
fails its dependent cells with its message, without running them. Finished cells (a record
exists) are never recomputed, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import fnmatch
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import medmnist
import yaml

from . import baseline, data, plugins, records
from .errors import SpecError
from .executors import LocalExecutor, Task
from .models import BACKBONES
from .runner import make_record
from .spec import Cell, Spec, expand

log = logging.getLogger(__name__)

# Rough seconds on a 2-core CPU (measured on the development machine), used by --dry-run
# only when the output folder has no records to learn from.
EPOCH_SECONDS_PER_1K = {"smallcnn": 0.6, "vgg": 1.5, "resnet18": 15.0}
CELL_SECONDS = {"smallcnn": 1.0, "vgg": 2.0, "resnet18": 15.0}


class SilentProgress:
    """Progress reporting for library callers that want none (the CLI uses a rich bar)."""

    def start(self, total: int) -> None:
        pass

    def advance(self, label: str, record: dict | None) -> None:
        pass


@dataclass
class Plan:
    spec: Spec
    cells: list[Cell]
    out: Path
    cache: Path
    finished: set[str] = field(default_factory=set)

    @property
    def records_dir(self) -> Path:
        return self.out / "records"

    @property
    def todo(self) -> list[Cell]:
        return [c for c in self.cells if c.hash not in self.finished]

    def baselines_missing(self) -> list:
        keys = dict.fromkeys(c.baseline for c in self.todo)
        return [k for k in keys if not baseline.path(k, self.cache).is_file()]

    def scores_missing(self) -> list:
        keys = dict.fromkeys(c.scores for c in self.todo)
        return [k for k in keys if not (self.cache / "scores" / f"{k.hash}.pt").is_file()]

    def estimate_seconds(self) -> float:
        learned = _learned_cell_seconds(self.records_dir)
        train = sum(k.epochs * medmnist.INFO[k.dataset]["n_samples"]["train"] / 1000
                    * EPOCH_SECONDS_PER_1K.get(k.backbone, 5.0)
                    if k.dataset != data.SYNTHETIC else k.epochs
                    for k in self.baselines_missing())
        cells = sum(learned.get(c.backbone, CELL_SECONDS.get(c.backbone, 5.0)) for c in self.todo)
        return train + cells


def _learned_cell_seconds(folder: Path) -> dict[str, float]:
    times: dict[str, list[float]] = {}
    for path in sorted(folder.glob("*.json"))[:500] if folder.is_dir() else []:
        try:
            rec = records.read(path)
        except Exception:
            continue
        times.setdefault(rec["cell"]["backbone"], []).append(rec["provenance"]["seconds"])
    return {k: sum(v) / len(v) for k, v in times.items()}


def _resolve(kind: str, patterns: tuple[str, ...], known: list[str],
             strict: Callable[[str], Any]) -> list[str]:
    out: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matched = [n for n in known if fnmatch.fnmatchcase(n, pattern)]
            if not matched:
                raise SpecError(f"no {kind} matches {pattern!r}")
        else:
            strict(pattern)
            matched = [pattern]
        out += [m for m in matched if m not in out]
    return out


def plan(spec: Spec, out: Path, cache: Path, retry_failed: bool = False) -> Plan:
    """Resolve names, check data files (md5), expand the matrix and find finished cells."""
    catalogue = plugins.catalogue()
    datasets = _resolve("dataset", spec.datasets, data.names(), data.info)
    backbones = _resolve("backbone", spec.backbones, list(BACKBONES), BACKBONES.get)
    methods = catalogue.expand(list(spec.methods))
    for flag in datasets:
        if flag != data.SYNTHETIC:
            data.locate(flag, spec.size)
    declared = {m: (str(catalogue.get(m).cls.version), catalogue.get(m).cls.granularities)
                for m in methods}
    spec = Spec(**{**spec.__dict__, "datasets": tuple(datasets), "backbones": tuple(backbones),
                   "methods": tuple(methods)})
    cells = expand(spec, declared)
    if not cells:
        raise SpecError("the matrix is empty: no method supports the requested granularities")
    finished = set()
    for path in sorted((out / "records").glob("*.json")):
        try:
            rec = records.read(path)
        except Exception:
            log.warning("ignoring unreadable record %s (the cell will be recomputed)", path)
            continue
        if rec["status"] == "ok" or not retry_failed:
            finished.add(rec["cell_hash"])
    return Plan(spec, cells, out, cache, finished)


def write_spec(p: Plan) -> None:
    p.out.mkdir(parents=True, exist_ok=True)
    (p.out / "spec.yaml").write_text(yaml.safe_dump(
        {k: list(v) if isinstance(v, tuple) else v for k, v in p.spec.__dict__.items()},
        sort_keys=False))


def run(p: Plan, executor: LocalExecutor, tracker, progress) -> Counter:
    """Run the plan's missing cells; return counts of ``ok`` / ``failed`` records written."""
    write_spec(p)
    cells = {c.hash: c for c in p.todo}
    counts: Counter = Counter()
    _sync_tracking(p, tracker)

    def finish_cell(cell: Cell, outcome: dict[str, Any]) -> None:
        record = make_record(cell, outcome)
        records.write(p.records_dir, record)
        tracker.log_cell(record)
        counts[record["status"]] += 1
        progress.advance(cell.label(), record)

    failed_prereq: dict[str, str] = {}

    def prerequisite_done(task: Task, outcome: dict[str, Any]) -> None:
        progress.advance(task.label, None)
        if not outcome["ok"]:
            failed_prereq[task.key] = f"{task.kind} failed: {outcome['error']}"

    base_tasks = [Task("baseline", k.hash, k.__dict__, f"train {k.dataset}/{k.backbone}")
                  for k in p.baselines_missing()]
    score_keys = p.scores_missing()
    progress.start(len(base_tasks) + len(score_keys) + len(cells))
    executor.run(base_tasks, prerequisite_done)
    score_tasks = []
    for key in score_keys:
        if key.baseline.hash in failed_prereq:
            failed_prereq[key.hash] = failed_prereq[key.baseline.hash]
            progress.advance(f"skip scores {key.method}", None)
        else:
            payload = {**key.__dict__, "baseline": key.baseline.__dict__}
            score_tasks.append(Task("scores", key.hash, payload,
                                    f"score {key.baseline.dataset}/{key.baseline.backbone}"
                                    f"/{key.method}/{key.granularity}"))
    executor.run(score_tasks, prerequisite_done)

    runnable = []
    for cell in cells.values():
        reason = failed_prereq.get(cell.baseline.hash) or failed_prereq.get(cell.scores.hash)
        if reason:
            finish_cell(cell, {"ok": False, "error": reason, "seconds": 0.0})
        else:
            runnable.append(Task("cell", cell.hash, cell.__dict__, cell.label()))
    executor.run(runnable, lambda task, outcome: finish_cell(cells[task.key], outcome))
    return counts


def _sync_tracking(p: Plan, tracker) -> None:
    """Log any finished record that has no MLflow run yet (a run killed between the two)."""
    logged = tracker.logged_cells()
    for cell in p.cells:
        if cell.hash in p.finished and cell.hash not in logged:
            tracker.log_cell(records.read(p.records_dir / f"{cell.hash}.json"))
