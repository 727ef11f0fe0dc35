"""Every method next to random: accuracy after 30% and 50% pruning (issue: sound criteria).

For BloodMNIST and BreastMNIST x smallcnn and vgg (the protocol-2 baseline recipe), prints
the test accuracy after channel and weight pruning at 30% and 50%, without recovery and with
BatchNorm re-calibration, at layer and global scope, for every built-in method (its seed-0
cell), next to random's mean over its cells of seeds 0, 1 and 2 (each seed its own baseline,
scores and tie-break, as the leaderboard averages seeds). A method below that mean is
flagged with "<". Every point is one cell computed by ``bench.compute.runner.run_cell``, the
benchmark's own protocol (transparency off: accuracy is all this prints).

    XPRUNE_DATA_ROOT=... python benchmarks/criteria_vs_random.py [--cache DIR] [--threads N]

Baselines and scores come from (and go to) the cache, so after a leaderboard run (seeds 0-2)
this only prunes, recovers and measures each cell; from an empty cache it also trains the
twelve baselines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

DATASETS = ("bloodmnist", "breastmnist")
BACKBONES = ("smallcnn", "vgg")
SPARSITIES = (0.3, 0.5)
RANDOM_SEEDS = (0, 1, 2)


def make_cell(flag: str, backbone: str, method: str, granularity: str,
              column: tuple[str, str, float], seed: int = 0, *, versions: dict[str, str]):
    """The benchmark's cell of ``method`` at a (scope, recovery, sparsity) column: the
    protocol-2 baseline recipe, 10 reference images per class, no transparency."""
    from bench.core.spec import DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, Cell

    scope, recovery, sparsity = column
    return Cell(flag, 28, backbone, method, versions[method], granularity, scope, sparsity, recovery,
                seed, DEFAULT_EPOCHS[backbone], 10, DEFAULT_MIN_STEPS, transparency=False)


def accuracy(cell, cache: Path) -> float:
    """Test accuracy after recovery of one cell, as the benchmark computes it."""
    from bench.compute import runner

    return runner.run_cell(cell, cache)["recovered"]["acc"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache")))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from bench import plugins
    from bench.compute import baseline, data

    torch.set_num_threads(args.threads)
    catalogue = plugins.declarations()
    names = catalogue.builtins()
    versions = {name: catalogue.get(name).version for name in names}
    start = time.perf_counter()
    below = []
    for flag in DATASETS:
        dataset = data.load(flag)
        for backbone in BACKBONES:
            cell = partial(make_cell, flag, backbone, versions=versions)
            key = cell("random", "channel", ("layer", "none", 0.5)).baseline
            _, meta = baseline.get(key, dataset, args.cache)
            print(f"\n## {flag} / {backbone}: dense test accuracy {meta['test']['acc']:.3f}")
            for granularity in ("channel", "weight"):
                methods = [n for n in names if granularity in catalogue.get(n).granularities]
                columns = [(sc, rec, s) for sc in ("layer", "global") for rec in ("none", "bnrecal")
                           for s in SPARSITIES]
                header = " | ".join(f"{sc[0]}/{rec}/{s:.0%}" for sc, rec, s in columns)
                print(f"\n{granularity} pruning, accuracy (scope l=layer g=global / recovery / "
                      f"sparsity)\n| method | {header} |\n|---|" + "---|" * len(columns))
                rand = {c: statistics.fmean(accuracy(cell("random", granularity, c, seed),
                                                     args.cache)
                                            for seed in RANDOM_SEEDS) for c in columns}
                print("| random (mean of 3 seeds) | "
                      + " | ".join(f"{rand[c]:.3f}" for c in columns) + " |")
                for name in methods:
                    accs = {c: accuracy(cell(name, granularity, c), args.cache) for c in columns}
                    cells = []
                    for c in columns:
                        flag_below = accs[c] < rand[c]
                        cells.append(f"{accs[c]:.3f}{' <' if flag_below else ''}")
                        if flag_below:
                            below.append(f"{flag}/{backbone}/{granularity}/{name} at "
                                         f"{c[0]}/{c[1]}/{c[2]:.0%}: {accs[c]:.3f} < {rand[c]:.3f}")
                    print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n{len(below)} point(s) below the random mean:")
    for line in below:
        print(f"- {line}")
    print(f"\n({time.perf_counter() - start:.0f} s, {args.threads} torch threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
