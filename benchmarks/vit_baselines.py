"""ViT baselines: test AUC / ACC on BloodMNIST and PneumoniaMNIST against the issue's targets.

Trains (or loads from the cache) the ViT baselines with the engine's recipe (the same
``BASELINE_RECIPE`` as every backbone: Adam 1e-3, batch 128, per-step cosine, at least 1000
steps, about 20 BN-free checkpoints scored on validation) and prints per dataset and seed
the test AUC, ACC and balanced accuracy, the training minutes and whether the target is
met (test AUC >= 0.95 on BloodMNIST, >= 0.93 on PneumoniaMNIST).

    XPRUNE_DATA_ROOT=... python benchmarks/vit_baselines.py [--cache DIR] [--seeds 0]
        [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

TARGETS = {"bloodmnist": 0.95, "pneumoniamnist": 0.93}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache")))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()

    import torch

    from bench.compute import baseline, data
    from bench.core.spec import DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, BaselineKey

    torch.set_num_threads(args.threads)
    print("| dataset | seed | epochs (steps) | test AUC | test ACC | balanced ACC | target AUC "
          "| met | minutes |")
    print("|---|---|---|---|---|---|---|---|---|")
    missed = 0
    for flag, target in TARGETS.items():
        dataset = data.load(flag)
        for seed in (int(s) for s in args.seeds.split(",")):
            key = BaselineKey(flag, 28, "vit", seed, DEFAULT_EPOCHS["vit"], DEFAULT_MIN_STEPS)
            _, meta = baseline.get(key, dataset, args.cache, args.device)
            test, epochs = meta["test"], meta["history"][-1]["epoch"]
            missed += test["auc"] < target
            print(f"| {flag} | {seed} | {epochs} ({meta['steps']}) | {test['auc']:.3f} | "
                  f"{test['acc']:.3f} | {test['bal_acc']:.3f} | {target} | "
                  f"{'yes' if test['auc'] >= target else 'NO'} | {meta['seconds'] / 60:.1f} |",
                  flush=True)
    print(f"\n{args.threads} torch thread(s) on {args.device}; {missed} baseline(s) miss the target")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
