"""The coordinator: plan a matrix, run what is missing, write records, log MLflow.

A run is :func:`plan` (once) and then :func:`execute`, its lifecycle: the tracking store's
preflight, the output folder's lock, the MLflow parent run, :func:`run`'s stages and the
summary. ``xprune run`` calls the two and prints; a library caller may call :func:`run` with
its own executor, tracker and progress.

Stages: baselines to train, then scores to compute, then cells. Stages are a scheduling
device only (each prerequisite is computed once, not by two workers at the same time);
``runner.run_cell`` works without them because every step is cached. A failed prerequisite
fails its dependent cells with its message, without running them. Finished cells (a record
exists) are never recomputed, so a killed run resumes where it stopped.

Planning imports neither torch nor MLflow: names come from the plugin metadata cache and
the registries' sources, cell hashes from ``bench.core.spec`` and finished cells from the
records, so ``--dry-run`` and a re-run with nothing to do answer in about a second.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import yaml

from bench import plugins
from bench.compute import data
from bench.core import backbones, paths
from bench.core.errors import SpecError, XPruneError
from bench.core.spec import FIXED_SIZE, BaselineKey, Cell, Spec, applicable, expand
from bench.core.tasks import ComputeScores, JudgeSoundness, Outcome, RunCell, Task, TrainBaseline
from bench.results import records

log = logging.getLogger(__name__)

# Rough seconds on a 2-core CPU (measured on the development machine), used by --dry-run
# only when the output folder has no records to learn from.
# resnet20: 368 s for BreastMNIST's 1000 steps (109 k training images), one thread; about
# 6.5 CPU-seconds per BreastMNIST cell with one thread per worker (README, ResNet-20).
EPOCH_SECONDS_PER_1K = {"smallcnn": 0.6, "vgg": 1.5, "resnet18": 15.0, "resnet20": 3.4,
                        "vit": 4.0}
CELL_SECONDS = {"smallcnn": 1.5, "vgg": 2.5, "resnet18": 40.0, "resnet20": 6.5}
TRAIN_BATCH = 128  # bench.compute.train's batch size (imported lazily there: it needs torch)
SCORE_SECONDS = 2.0
# one soundness verdict (a sandboxed process judging a method on the small synthetic-set
# models): the synthetic preset's 19 verdicts took a third of its 172 CPU-seconds
SOUNDNESS_SECONDS = 3.0


class TaskExecutor(Protocol):
    """Where tasks run (``executors.LocalExecutor``, ``slurm.SlurmExecutor``): ``run`` calls
    ``done(task, outcome)`` in this process as each task finishes; ``close`` frees workers."""

    def run(self, tasks: Iterable[Task], done: Callable[[Task, Outcome], None]) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    """What the coordinator reports as tasks finish (``console.progress``, ``SilentProgress``);
    ``stop`` is called once the run ends, however it ends."""

    def start(self, total: int) -> None: ...

    def advance(self, label: str, record: dict | None) -> None: ...

    def stop(self) -> None: ...


class RunTracker(Protocol):
    """Where runs are logged (``tracking.Tracker``: MLflow)."""

    def log_cell(self, record: dict[str, Any]) -> None: ...

    def log_baseline(self, key: dict[str, Any], entry: dict[str, Any],
                     written: float | None = None) -> str: ...

    def logged_cells(self) -> set[str]: ...

    def logged_baselines(self) -> set[str]: ...

    def log_summary(self, summary: dict[str, float], table: str,
                    curves: list[dict[str, Any]] | None = None) -> None: ...


class SilentProgress:
    """Progress reporting for library callers that want none (the CLI has its own)."""

    def start(self, total: int) -> None:
        pass

    def advance(self, label: str, record: dict | None) -> None:
        pass

    def stop(self) -> None:
        pass


# The small trained models the soundness stage judges criteria on (bench.compute.soundness): the
# smallcnn, and the ViT (test accuracy 1.0 on the synthetic set after 8 epochs).
SOUNDNESS_CNN = BaselineKey(data.SYNTHETIC, 28, "smallcnn", seed=0, epochs=8, min_steps=0)
SOUNDNESS_VIT = BaselineKey(data.SYNTHETIC, 28, "vit", seed=0, epochs=8, min_steps=0)


def soundness_model(granularity: str, architectures: tuple[str, ...] | None) -> BaselineKey:
    """The smallcnn, or the ViT for heads and for methods that do not apply to CNNs."""
    cnn = granularity != "head" and applicable("smallcnn", granularity, architectures)
    return SOUNDNESS_CNN if cnn else SOUNDNESS_VIT


@dataclass
class Plan:
    spec: Spec
    cells: list[Cell]
    out: Path
    cache: Path
    finished: set[str] = field(default_factory=set)
    learned: dict[str, float] = field(default_factory=dict)  # backbone -> mean cell seconds
    device: str = "cpu"  # resolved: cpu or cuda (bench.compute.device.resolve)
    retry_failed: bool = False  # failed records count as not finished

    def rescan(self) -> None:
        """Read the finished cells from the records again (the matrix stays as planned): what
        another run wrote before this one took the output folder's lock is not redone."""
        self.finished, self.learned = _scan_records(self.records_dir, self.retry_failed)

    @property
    def records_dir(self) -> Path:
        return self.out / "records"

    @property
    def todo(self) -> list[Cell]:
        return [c for c in self.cells if c.hash not in self.finished]

    def baselines_missing(self) -> list[BaselineKey]:
        keys = dict.fromkeys(c.baseline for c in self.todo)
        return [k for k in keys if not paths.baseline(k, self.cache, self.device).is_file()]

    def _verdict_keys(self) -> list[tuple[str, str, str]]:
        """(method, version, granularity) of the cells to run: one soundness verdict each."""
        return list(dict.fromkeys((c.method, c.method_version, c.granularity) for c in self.todo))

    def soundness_missing(self) -> list[tuple[str, str, str]]:
        """The verdicts of the cells to run that are not cached."""
        return [k for k in self._verdict_keys() if not paths.soundness(*k, self.cache).is_file()]

    def soundness_models_missing(self, verdicts: list[tuple[str, str, str]]) -> list[BaselineKey]:
        """The soundness models the missing ``verdicts`` are judged on that are not trained yet
        (on CPU, where the judge runs; a GPU run trains them inside the verdict task)."""
        if self.device != "cpu":
            return []
        archs = plugins.declarations()
        keys = dict.fromkeys(soundness_model(g, archs.get(m).architectures) for m, _, g in verdicts)
        return [k for k in keys if not paths.baseline(k, self.cache).is_file()]

    def cached_verdicts(self) -> dict[tuple[str, str], str]:
        """The cached verdicts of the cells to run (a missing or unreadable one is absent)."""
        from bench.compute import cache

        found = {}
        for m, v, g in self._verdict_keys():
            try:
                found[(m, g)] = cache.load(paths.soundness(m, v, g, self.cache))["verdict"]
            except (OSError, KeyError, cache.CorruptEntry):
                pass
        return found

    def scores_missing(self) -> list:
        keys = dict.fromkeys(c.scores for c in self.todo)
        return [k for k in keys if not paths.scores(k, self.cache, self.device).is_file()]

    def _train_seconds(self, key: BaselineKey) -> float:
        """Epochs (raised to reach ``min_steps``, as bench.compute.train does) x images x rate."""
        train = (600 if key.dataset == data.SYNTHETIC
                 else data.medmnist_info()[key.dataset]["n_samples"]["train"])
        epochs = max(key.epochs, math.ceil(key.min_steps / math.ceil(train / TRAIN_BATCH)))
        return epochs * train / 1000 * EPOCH_SECONDS_PER_1K.get(key.backbone, 5.0)

    def _cell_seconds(self, cell: Cell) -> float:
        return self.learned.get(cell.backbone, CELL_SECONDS.get(cell.backbone, 5.0))

    def estimate_seconds(self, rows: list[dict[str, Any]]) -> float:
        """A rough wall-time estimate for one worker (learned from records when present):
        every row's work (``rows()``, derived once by the caller), plus the soundness verdicts
        to judge and the models they need."""
        verdicts = self.soundness_missing()
        return (sum(r["seconds"] for r in rows) + SOUNDNESS_SECONDS * len(verdicts)
                + sum(self._train_seconds(k) for k in self.soundness_models_missing(verdicts)))

    def rows(self) -> list[dict[str, Any]]:
        """One row per dataset and backbone: what is finished, cached and new, and how long
        (a rough estimate for one worker, learned from records when present; it looks up the
        cache, so derive it once)."""
        out = []
        groups: dict[tuple[str, str], list[Cell]] = {}
        for cell in self.cells:
            groups.setdefault((cell.dataset, cell.backbone), []).append(cell)
        missing_b = set(self.baselines_missing())
        missing_s = {k.hash for k in self.scores_missing()}
        for (dataset, backbone), cells in groups.items():
            todo = [c for c in cells if c.hash not in self.finished]
            bases = list(dict.fromkeys(c.baseline for c in todo))
            scores = list(dict.fromkeys(c.scores.hash for c in todo))
            new_b = [k for k in bases if k in missing_b]
            new_s = [h for h in scores if h in missing_s]
            seconds = (sum(self._train_seconds(k) for k in new_b) + SCORE_SECONDS * len(new_s)
                       + sum(self._cell_seconds(c) for c in todo))
            out.append({"dataset": dataset, "backbone": backbone,
                        "methods": len({c.method for c in cells}), "cells": len(cells),
                        "finished": len(cells) - len(todo), "todo": len(todo),
                        "baselines": len(bases), "baselines_new": len(new_b),
                        "scores": len(scores), "scores_new": len(new_s), "seconds": seconds})
        return out


def _scan_records(folder: Path, retry_failed: bool) -> tuple[set[str], dict[str, float]]:
    """Finished cell hashes (failed ones too unless retried) and mean seconds per backbone."""
    finished: set[str] = set()
    times: dict[str, list[float]] = {}
    try:
        paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    except OSError as exc:
        raise XPruneError(f"output folder {folder.parent} cannot be read ({exc.strerror})") from None
    for path in paths:
        if path.name.startswith(".tmp-"):
            continue
        try:
            rec = records.read(path)
        except XPruneError:
            log.warning("ignoring unreadable record %s (the cell will be recomputed)", path)
            continue
        if rec["status"] == "ok" or not retry_failed:
            finished.add(rec["cell_hash"])
        if rec["status"] == "ok":
            times.setdefault(rec["cell"]["backbone"], []).append(rec["provenance"]["seconds"])
    return finished, {k: statistics.fmean(v) for k, v in times.items()}


def plan(spec: Spec, out: Path, cache: Path, retry_failed: bool = False,
         device: str = "cpu") -> Plan:
    """Resolve names, check data files (md5), expand the matrix and find finished cells.

    ``device`` is the resolved device kind tasks run on (it names the cache files to look for).
    """
    catalogue = plugins.declarations()
    datasets = data.datasets().expand(list(spec.datasets))
    backbone_list = backbones.registry().expand(list(spec.backbones))
    methods = catalogue.expand(list(spec.methods))
    for source, error in catalogue.broken.items():
        log.warning("skipping method plugin %s: %s", source, error)
    for flag in datasets:
        if flag != data.SYNTHETIC:
            data.locate(flag, spec.size)
    for backbone in backbone_list:
        if FIXED_SIZE.get(backbone, spec.size) != spec.size:
            raise SpecError(f"backbone {backbone} is built for {FIXED_SIZE[backbone]} px images, "
                            f"not size {spec.size}")
    declared = {m: (catalogue.get(m).version, catalogue.get(m).granularities,
                    catalogue.get(m).architectures) for m in methods}
    spec = Spec(**{**spec.__dict__, "datasets": tuple(datasets),
                   "backbones": tuple(backbone_list), "methods": tuple(methods)})
    cells = expand(spec, declared)
    if not cells:
        raise SpecError("the matrix is empty: no method supports the requested granularities "
                        "on the requested backbones")
    finished, learned = _scan_records(Path(out) / "records", retry_failed)
    return Plan(spec, cells, Path(out), Path(cache), finished, learned, device, retry_failed)


def write_spec(p: Plan) -> None:
    p.out.mkdir(parents=True, exist_ok=True)
    (p.out / "spec.yaml").write_text(yaml.safe_dump(p.spec.to_dict(), sort_keys=False))


def run(p: Plan, executor: TaskExecutor, tracker: RunTracker, progress: Progress) -> Counter:
    """Run the plan's missing cells; return counts of ``ok`` / ``failed`` records written."""
    started = time.monotonic()
    write_spec(p)
    cells = {c.hash: c for c in p.todo}
    counts: Counter = Counter()
    _sync_tracking(p, tracker)

    def finish_cell(cell: Cell, outcome: Outcome) -> None:
        record = records.make_record(cell, outcome, verdicts.get((cell.method, cell.granularity)))
        records.write(p.records_dir, record)
        tracker.log_cell(record)
        counts[record["status"]] += 1
        progress.advance(cell.label(), record)

    failed_prereq: dict[str, str] = {}

    def prerequisite_done(task: Task, outcome: Outcome) -> None:
        progress.advance(task.label, None)
        if not outcome.ok:
            failed_prereq[task.id] = f"{task.kind} failed: {outcome.error}"

    # Baselines, and the small models soundness verdicts are judged on, are untimed
    # prerequisites; each method's verdict is then a timed task like scoring (a hanging
    # plugin fails its verdict and its cells, never the matrix).
    sound_missing = p.soundness_missing()
    base_tasks = [TrainBaseline(k) for k in dict.fromkeys(
        p.baselines_missing() + p.soundness_models_missing(sound_missing))]
    timeout = getattr(executor, "timeout", None)  # --cell-timeout bounds each scoring process
    sound_tasks = [JudgeSoundness(m, g, timeout) for m, _, g in sound_missing]
    verdicts: dict[tuple[str, str], str] = {}  # a judged verdict is cached; a failed one is not

    def verdict_done(task: JudgeSoundness, outcome: Outcome) -> None:
        progress.advance(task.label, None)
        if not outcome.ok:
            verdicts[(task.method, task.granularity)] = f"fail: {outcome.error}"

    # grouped by method: a worker's consecutive scoring tasks then fork from one scoring
    # server (bench.compute.sandbox.Server) instead of each starting Python and torch
    score_keys = sorted(p.scores_missing(), key=lambda key: key.method)
    progress.start(len(base_tasks) + len(sound_tasks) + len(score_keys) + len(cells))
    try:
        executor.run(base_tasks, prerequisite_done)
        _log_baselines(p, tracker, failed_prereq)
        executor.run(sound_tasks, verdict_done)
        verdicts = p.cached_verdicts() | verdicts
        score_tasks = []
        for key in score_keys:
            if key.baseline.hash in failed_prereq:
                failed_prereq[key.hash] = failed_prereq[key.baseline.hash]
                progress.advance(f"skip scores {key.method}", None)
            else:
                score_tasks.append(ComputeScores(key, timeout))
        executor.run(score_tasks, prerequisite_done)

        runnable = []
        for cell in cells.values():
            reason = failed_prereq.get(cell.baseline.hash) or failed_prereq.get(cell.scores.hash)
            if reason:
                finish_cell(cell, Outcome.failure(reason))
            else:
                runnable.append(RunCell(cell))
        executor.run(runnable, lambda task, outcome: finish_cell(task.cell, outcome))
    finally:
        executor.close()  # the local pool is kept across stages; stop it here
    from bench.run.report import summarize_run

    tracker.log_summary(*summarize_run(p.records_dir, len(p.cells), counts,
                                       time.monotonic() - started))
    return counts


def _log_baselines(p: Plan, tracker, failed: dict[str, str]) -> None:
    """Give every baseline this run uses, and that has no MLflow run yet, its own run."""
    from bench.compute import cache

    logged = tracker.logged_baselines()
    for key in dict.fromkeys(c.baseline for c in p.todo):
        if key.hash in logged or key.hash in failed:
            continue
        path = paths.baseline(key, p.cache, p.device)
        try:
            entry, written = cache.load(path), path.stat().st_mtime  # written: training's end
        except (OSError, cache.CorruptEntry):
            continue  # recomputed by the cell that needs it; logged by a later run
        tracker.log_baseline(key.__dict__ | {"hash": key.hash}, entry, written)


def _sync_tracking(p: Plan, tracker) -> None:
    """Log any finished record that has no MLflow run yet (a run killed between the two)."""
    logged = tracker.logged_cells()
    for cell in p.cells:
        if cell.hash in p.finished and cell.hash not in logged:
            tracker.log_cell(records.read(p.records_dir / f"{cell.hash}.json"))


@dataclass(frozen=True)
class Launch:
    """Where and how a run's tasks compute: ``local`` worker processes or ``slurm`` job arrays
    (``slurm`` = partition, minutes per task, GPUs, CPUs per task)."""

    executor: str = "local"
    workers: int = 1
    cell_timeout: float | None = None
    slurm: tuple[str | None, int, int, int] = (None, 60, 0, 1)

    def task_executor(self, p: Plan) -> TaskExecutor:
        """The executor this launch asks for, for ``p``'s cache and device."""
        if self.executor == "local":
            from bench.run.executors import LocalExecutor

            return LocalExecutor(p.cache, self.workers, self.cell_timeout, p.device)
        if self.executor == "slurm":
            from bench.run.slurm import SlurmExecutor

            return SlurmExecutor(p.cache, p.out / "slurm", *self.slurm, device=p.device)
        raise SpecError(f"unknown executor {self.executor!r} (known: local, slurm)")


@dataclass
class RunResult:
    """What a finished ``execute`` did: its counts (None: nothing to do) and wall seconds."""

    plan: Plan
    uri: str
    counts: Counter | None = None
    seconds: float = 0.0
    experiment_id: str | None = None  # the MLflow experiment's id (None: nothing was run)


def execute(p: Plan, launch: Launch, progress: Progress,
            note: Callable[[str], None] = log.warning) -> RunResult:
    """A run's lifecycle: refuse an unusable tracking store, take the output folder's lock,
    re-read its records, then run what is missing under an MLflow parent run that ends
    FINISHED, FAILED or KILLED (Ctrl-C, SIGTERM). ``p`` is planned once, by :func:`plan`;
    ``note`` hears what the run found on the way (parent runs of dead coordinators)."""
    from bench.run.folder import Journal, OutputLock, make_writable
    from bench.run.tracking import Tracker, experiment_name, preflight, tracking_uri

    uri, experiment = tracking_uri(), experiment_name(p.spec.name)
    preflight(uri)  # an unreachable or read-only store: refused before any work
    make_writable(p.cache, "cache folder")
    make_writable(p.out, "output folder")
    with OutputLock(p.out):
        make_writable(p.records_dir, "output folder")
        p.rescan()  # now under the lock
        journal = Journal(p.out, uri, experiment)
        if not p.todo and journal.covers(p.finished):
            return RunResult(p, uri)
        task_executor = launch.task_executor(p)
        tracker = Tracker(experiment, p.spec.name, {
            "spec": p.spec.name, "cells": len(p.cells), "new_cells": len(p.todo),
            "out": str(p.out), "workers": launch.workers, "executor": launch.executor,
            "device": p.device}, uri=uri, journal=journal)
        if tracker.reaped:
            note(f"marked {len(tracker.reaped)} MLflow run(s) of dead coordinators KILLED")
        status, started = "FAILED", time.monotonic()
        try:
            counts = run(p, task_executor, tracker, progress)
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            progress.stop()
            tracker.finish(status)
    return RunResult(p, uri, counts, time.monotonic() - started, tracker.experiment_id)
