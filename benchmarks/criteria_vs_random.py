"""Every method next to random: accuracy after 30% and 50% pruning (issue: sound criteria).

For BloodMNIST and BreastMNIST x smallcnn and vgg (seed-0 baselines, the protocol-2 recipe),
prints the test accuracy after channel and weight pruning at 30% and 50%, without recovery
and with BatchNorm re-calibration, at layer and global scope, for every built-in method,
next to random pruning averaged over 3 random draws (seeds 0, 1, 2 of the scores and the
tie-break) on the same baseline. A method below that mean is flagged with "<".

    XPRUNE_DATA_ROOT=... python benchmarks/criteria_vs_random.py [--cache DIR] [--threads N]

Baselines and scores come from (and go to) the cache, so after a leaderboard run this only
prunes and evaluates (about 10 minutes on 2 cores); from an empty cache it also trains the
four baselines (about 15 minutes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

DATASETS = ("bloodmnist", "breastmnist")
BACKBONES = ("smallcnn", "vgg")
SPARSITIES = (0.3, 0.5)
RANDOM_SEEDS = (0, 1, 2)


def accuracy(model, scores, granularity, scope, sparsity, recovery, dataset, seed) -> float:
    """Test accuracy of one prune (+ recovery) of ``model`` with ``scores``."""
    from bench.compute import evaluate, prune, recover

    pruned = prune.prune(model, scores, granularity, scope, sparsity, dataset.test.x[:1], seed)
    pruned.model, _ = recover.recover(pruned.model, recovery, dataset, seed)
    final = prune.finalize(pruned)
    return evaluate.task_scores(final, dataset.test, dataset.info.task)["acc"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache")))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from bench import plugins
    from bench.compute import baseline, data, scoring
    from bench.core.spec import DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, BaselineKey, ScoreKey

    torch.set_num_threads(args.threads)
    catalogue = plugins.catalogue()
    names = catalogue.builtins()
    start = time.perf_counter()
    below = []
    for flag in DATASETS:
        dataset = data.load(flag)
        for backbone in BACKBONES:
            key = BaselineKey(flag, 28, backbone, 0, DEFAULT_EPOCHS[backbone], DEFAULT_MIN_STEPS)
            model, meta = baseline.get(key, dataset, args.cache)
            print(f"\n## {flag} / {backbone}: dense test accuracy {meta['test']['acc']:.3f}")
            for granularity in ("channel", "weight"):
                methods = [n for n in names if granularity in catalogue.get(n).cls.granularities]
                scores = {}
                for name in methods:
                    cls = catalogue.get(name).cls
                    skey = ScoreKey(key, name, str(cls.version), granularity, 10)
                    scores[name] = scoring.get(skey, model, dataset, args.cache)["scores"]
                batch = data.reference_batch(dataset, 10, 0)
                random_draws = {seed: scoring.run_method(catalogue.get("random").cls, model,
                                                         granularity, batch, seed)[0]
                                for seed in RANDOM_SEEDS}
                columns = [(sc, rec, s) for sc in ("layer", "global") for rec in ("none", "bnrecal")
                           for s in SPARSITIES]
                header = " | ".join(f"{sc[0]}/{rec}/{s:.0%}" for sc, rec, s in columns)
                print(f"\n{granularity} pruning, accuracy (scope l=layer g=global / recovery / "
                      f"sparsity)\n| method | {header} |\n|---|" + "---|" * len(columns))
                rand = {c: statistics.fmean(accuracy(model, random_draws[seed], granularity, c[0],
                                                     c[2], c[1], dataset, seed)
                                            for seed in RANDOM_SEEDS) for c in columns}
                print("| random (mean of 3) | " + " | ".join(f"{rand[c]:.3f}" for c in columns) + " |")
                for name in methods:
                    accs = {c: accuracy(model, scores[name], granularity, c[0], c[2], c[1],
                                        dataset, 0) for c in columns}
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
