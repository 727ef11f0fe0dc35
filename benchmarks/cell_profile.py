"""Where a cell's time goes: the wall time of each step of ``runner.run_cell`` and of the
coordinator's record and MLflow logging, per backbone and granularity, as a table.

Each step is timed by wrapping the function the runner calls for it (the runner itself runs
unchanged: ``runner.execute(RunCell(cell))``, as a worker does), so the table is the protocol
as it runs, not a re-implementation. Baselines and scores come from (and go to) the cache; a
first pass per cell warms them and is not counted (``--repeats`` passes are, median shown).

    XPRUNE_DATA_ROOT=... python benchmarks/cell_profile.py [--backbones smallcnn,vgg,vit]
        [--dataset breastmnist] [--granularities channel,weight] [--sparsity 0.5]
        [--method magnitude] [--repeats 3] [--cache DIR] [--threads 1]

From an empty cache it trains each backbone's seed-0 baseline first (minutes for vgg and vit).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

# (module path, attribute, step label); task_scores is split by call order (before/after)
STEPS = (
    ("bench.compute.data", "load", "load data"),
    ("bench.compute.baseline", "get", "baseline fetch"),
    ("bench.compute.scoring", "get", "scores fetch"),
    ("bench.compute.prune", "prune", "prune"),
    ("bench.compute.evaluate", "task_scores", "evaluate"),
    ("bench.compute.recover", "recover", "recover"),
    ("bench.compute.prune", "finalize", "finalize"),
    ("bench.compute.evaluate", "cost", "params/MACs"),
    ("bench.compute.runner", "cpu_latency", "latency"),
    ("bench.compute.transparency", "stage", "transparency"),
)


@contextmanager
def timed_steps(seconds: dict[str, list[float]]) -> Iterator[None]:
    """Wrap every step's function so each call adds its wall time to ``seconds[label]``."""
    import importlib

    originals = []
    calls: dict[str, int] = defaultdict(int)
    for module_name, attr, label in STEPS:
        module = importlib.import_module(module_name)
        original = getattr(module, attr)

        def wrapper(*a: Any, __f: Callable = original, __label: str = label, **k: Any) -> Any:
            name = __label
            if __label == "evaluate":
                calls[__label] += 1
                name = "evaluate (pruned)" if calls[__label] % 2 else "evaluate (recovered)"
            start = time.perf_counter()
            try:
                return __f(*a, **k)
            finally:
                seconds[name].append(time.perf_counter() - start)

        setattr(module, attr, wrapper)
        originals.append((module, attr, original))
    try:
        yield
    finally:
        for module, attr, original in originals:
            setattr(module, attr, original)


def profile_cell(cell, cache: Path, repeats: int, tracker) -> tuple[dict[str, float], float]:
    """Median seconds per step over ``repeats`` runs of one (warm) cell, and the median total."""
    from bench.compute.runner import execute
    from bench.core.tasks import RunCell
    from bench.results import records

    outcome = execute(RunCell(cell), cache)  # warm: baseline, scores, dense maps, latency
    if not outcome.ok:
        raise SystemExit(f"error: {cell.label()}: {outcome.error}")
    per_step: dict[str, list[float]] = defaultdict(list)
    totals = []
    for _ in range(repeats):
        seconds: dict[str, list[float]] = defaultdict(list)
        with timed_steps(seconds):
            outcome = execute(RunCell(cell), cache)
        start = time.perf_counter()
        record = records.make_record(cell, outcome, "pass")
        seconds["record (coordinator)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        tracker.log_cell(record)
        seconds["MLflow log_cell (coordinator)"].append(time.perf_counter() - start)
        for label, values in seconds.items():
            per_step[label].append(sum(values))
        totals.append(outcome.seconds + sum(seconds["record (coordinator)"])
                      + sum(seconds["MLflow log_cell (coordinator)"]))
    return {k: statistics.median(v) for k, v in per_step.items()}, statistics.median(totals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="smallcnn,vgg,vit")
    parser.add_argument("--dataset", default="breastmnist")
    parser.add_argument("--granularities", default="channel,weight")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--method", default="magnitude")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache")))
    args = parser.parse_args()

    import torch

    from bench import plugins
    from bench.core import spec
    from bench.run.tracking import Tracker

    torch.set_num_threads(args.threads)
    preset = spec.load_spec("quick")
    version = str(plugins.get(args.method).cls.version)
    store = tempfile.mkdtemp(prefix="xprune-profile-")
    tracker = Tracker("cell-profile", "cell-profile", {}, uri=f"sqlite:///{store}/mlflow.db")
    columns: list[tuple[str, dict[str, float], float]] = []
    for backbone in args.backbones.split(","):
        for granularity in args.granularities.split(","):
            cell = spec.Cell(args.dataset, 28, backbone, args.method, version, granularity,
                             "layer", args.sparsity, "bnrecal", 0, preset.epochs_for(backbone),
                             preset.reference_per_class)
            steps, total = profile_cell(cell, args.cache, args.repeats, tracker)
            columns.append((f"{backbone}/{granularity}", steps, total))
    tracker.finish()
    labels = [s[2] for s in STEPS]
    labels = ([lab for lab in labels if lab != "evaluate"][:4] + ["evaluate (pruned)"]
              + [lab for lab in labels if lab != "evaluate"][4:6] + ["evaluate (recovered)"]
              + [lab for lab in labels if lab != "evaluate"][6:]
              + ["record (coordinator)", "MLflow log_cell (coordinator)"])
    print(f"{args.dataset}, {args.method}, sparsity {args.sparsity}, layer scope, bnrecal; "
          f"median of {args.repeats} warm runs, {args.threads} torch thread(s), seconds\n")
    print("| step | " + " | ".join(c[0] for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for label in labels:
        print(f"| {label} | " + " | ".join(f"{c[1].get(label, 0.0):.3f}" for c in columns) + " |")
    print("| **cell total** | " + " | ".join(f"**{c[2]:.3f}**" for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
