"""How much does random pruning move between seeds, and does the published interval cover it?

Runs random channel pruning (layer scope, no recovery, and BatchNorm re-calibration) on
BreastMNIST x smallcnn with 5 seeds (each its own baseline, data order, random scores and
tie-break) at sparsities 0.3, 0.5 and 0.7, then prints per point the 5 accuracies, their
spread, and the 95% t-interval that ``bench.results.summary`` reports from the leaderboard's 3 seeds
(0, 1, 2), with whether seeds 3 and 4 fall inside it.

    XPRUNE_DATA_ROOT=... python benchmarks/random_spread.py [--cache DIR] [--workers 2]

From an empty cache this trains 5 small baselines (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

SEEDS = (0, 1, 2, 3, 4)
PUBLISHED_SEEDS = (0, 1, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache")))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dataset", default="breastmnist")
    parser.add_argument("--backbone", default="smallcnn")
    args = parser.parse_args()

    from bench.core.spec import Spec
    from bench.results import records
    from bench.results.summary import summarize
    from bench.run import coordinator
    from bench.run.executors import LocalExecutor
    from bench.run.tracking import Tracker

    with tempfile.TemporaryDirectory(prefix="xprune-spread-") as tmp:
        spec = Spec(name="random-spread", datasets=(args.dataset,), backbones=(args.backbone,),
                    methods=("random",), granularities=("channel",), scopes=("layer",),
                    sparsities=(0.3, 0.5, 0.7), recovery=("none", "bnrecal"), seeds=SEEDS,
                    transparency=False)
        plan = coordinator.plan(spec, Path(tmp) / "run", args.cache)
        tracker = Tracker(spec.name, spec.name, {}, uri=f"sqlite:///{tmp}/mlflow.db")
        coordinator.run(plan, LocalExecutor(args.cache, args.workers), tracker, coordinator.SilentProgress())
        tracker.finish()
        recs = [r for r in records.iter_records(plan.records_dir) if r["status"] == "ok"]
    published = [r for r in recs if r["cell"]["seed"] in PUBLISHED_SEEDS]
    settings, _, _ = summarize(published)
    print(f"random channel pruning, {args.dataset} / {args.backbone}, layer scope; test accuracy\n")
    print("| recovery | sparsity | seeds 0-4 | mean | sd (5 seeds) | range | published 95% CI "
          "(seeds 0-2) | seeds 3, 4 inside |")
    print("|---|---|---|---|---|---|---|---|")
    for setting in settings:
        (row,) = setting.rows
        for point in row.points:
            accs = {r["cell"]["seed"]: r["metrics"]["recovered"]["acc"] for r in recs
                    if r["cell"]["sparsity"] == point.sparsity
                    and r["cell"]["recovery"] == setting.key.recovery}
            values = [accs[s] for s in SEEDS]
            low, high = point.acc.ci
            inside = [low <= accs[s] <= high for s in SEEDS if s not in PUBLISHED_SEEDS]
            print(f"| {setting.key.recovery} | {point.sparsity:g} | "
                  f"{', '.join(f'{v:.3f}' for v in values)} | {statistics.fmean(values):.3f} | "
                  f"{statistics.stdev(values):.3f} | {min(values):.3f}-{max(values):.3f} | "
                  f"{low:.3f}-{high:.3f} | {sum(inside)} of {len(inside)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
