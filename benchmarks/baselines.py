"""The baseline table: test AUC / ACC of every published baseline against MedMNIST v2's targets.

Trains (or loads from the cache) the seed 0-2 baselines of the leaderboard spec with the
protocol-2 recipe and prints, per dataset and backbone, the mean test AUC, ACC and balanced
accuracy over the seeds with their 95% t-intervals, the majority-class accuracy, and whether
the targets of the baselines issue are met: vgg, resnet18 and resnet20 within 2 AUC points and 3 ACC
points of MedMNIST v2's ResNet-18 (28 px), smallcnn within 4 AUC points, and no baseline
below the majority class.

    XPRUNE_DATA_ROOT=... python benchmarks/baselines.py [--cache DIR] [--backbones smallcnn,vgg]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

# MedMNIST v2 (Scientific Data 2023, Table 3), ResNet-18 at 28 px: test AUC, ACC.
MEDMNIST_V2 = {"breastmnist": (0.901, 0.863), "pneumoniamnist": (0.944, 0.854),
               "retinamnist": (0.717, 0.524), "bloodmnist": (0.998, 0.958)}
AUC_MARGIN = {"smallcnn": 0.04, "vgg": 0.02, "resnet18": 0.02, "resnet20": 0.02}
ACC_MARGIN = {"vgg": 0.03, "resnet18": 0.03, "resnet20": 0.03}


def _mean_ci(values: list[float]) -> str:
    from bench.results.stats import t_interval

    ci = t_interval(values)
    spread = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    return f"{statistics.fmean(values):.3f}{spread}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache")))
    parser.add_argument("--backbones", default="smallcnn,vgg")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from bench.compute import baseline, data
    from bench.core.spec import DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, BaselineKey

    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| dataset | backbone | test AUC | test ACC | balanced ACC | majority ACC | "
          "MedMNIST v2 AUC / ACC | target met | minutes per baseline |")
    print("|---|---|---|---|---|---|---|---|---|")
    missed = 0
    for flag, (ref_auc, ref_acc) in MEDMNIST_V2.items():
        dataset = data.load(flag)
        majority = float(torch.bincount(dataset.test.y).max()) / len(dataset.test)
        for backbone in args.backbones.split(","):
            tests, minutes = [], []
            for seed in seeds:
                key = BaselineKey(flag, 28, backbone, seed, DEFAULT_EPOCHS[backbone],
                                  DEFAULT_MIN_STEPS)
                _, meta = baseline.get(key, dataset, args.cache)
                tests.append(meta["test"])
                minutes.append(meta["seconds"] / 60)
            auc = statistics.fmean(t["auc"] for t in tests)
            acc = statistics.fmean(t["acc"] for t in tests)
            ok = [auc >= ref_auc - AUC_MARGIN[backbone], acc > majority]
            if backbone in ACC_MARGIN:
                ok.append(acc >= ref_acc - ACC_MARGIN[backbone])
            missed += not all(ok)
            print(f"| {flag} | {backbone} | {_mean_ci([t['auc'] for t in tests])} | "
                  f"{_mean_ci([t['acc'] for t in tests])} | "
                  f"{_mean_ci([t['bal_acc'] for t in tests])} | {majority:.3f} | "
                  f"{ref_auc:.3f} / {ref_acc:.3f} | {'yes' if all(ok) else 'NO'} | "
                  f"{statistics.fmean(minutes):.1f} |", flush=True)
    print(f"\n{len(seeds)} seed(s) each; [low, high] = 95% t-interval over seeds; "
          f"{missed} baseline group(s) miss a target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
