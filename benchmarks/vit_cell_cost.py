"""What a ViT cell costs on the CPU, and what head / neuron pruning removes.

1. Parameters and MACs per image of the ViT (BloodMNIST: 3 channels, 8 classes) before and
   after layer-scope head pruning and MLP-neuron (channel) pruning at each sparsity
   (``bench.compute.evaluate.cost``: torch-pruning's counter, attention products included).
2. Wall time of whole cells (``bench.compute.runner.execute``, soundness included, transparency on)
   on BloodMNIST with the ViT baseline cached (train it first with vit_baselines.py): per
   method and granularity, the cell's seconds, its scoring seconds, and the dense -> pruned
   test AUC at sparsity 0.5 with BatchNorm-free ``bnrecal`` recovery.

    XPRUNE_DATA_ROOT=... python benchmarks/vit_cell_cost.py [--cache DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

CELLS = (("random", "head"), ("magnitude", "head"), ("taylor", "head"), ("lrp-attn", "head"),
         ("ig", "head"), ("taylor", "channel"), ("lrp-attn", "channel"), ("ig", "channel"))
SPARSITIES = (0.3, 0.5, 0.7, 0.9)


def counts() -> None:
    import torch

    from bench.compute import evaluate, models, prune
    from bench.compute.units import find_sites

    torch.manual_seed(0)
    model = models.build("vit", 3, 8).eval()
    x = torch.zeros(1, 3, 28, 28)
    dense = evaluate.cost(model, x)
    print("| granularity | sparsity | units left | params | MACs | compression | MAC reduction |")
    print("|---|---|---|---|---|---|---|")
    print(f"| dense | 0 | 24 heads, 768 neurons | {dense['params']:,} | {dense['macs']:,} | 1 | 1 |")
    for granularity in ("head", "channel"):
        sites = find_sites(model, granularity)
        for sparsity in SPARSITIES:
            scores = {s.name: torch.rand(s.shape) for s in sites}
            pruned = prune.prune(model, scores, granularity, "layer", sparsity, x)
            cost = evaluate.cost(pruned.model, x)
            left = sum(s.shape[0] for s in find_sites(pruned.model, granularity))
            print(f"| {granularity} | {sparsity} | {left} | {cost['params']:,} | "
                  f"{cost['macs']:,} | {dense['params'] / cost['params']:.2f} | "
                  f"{dense['macs'] / cost['macs']:.2f} |")


def cells(cache: Path) -> None:
    from bench import plugins
    from bench.compute.runner import execute
    from bench.core.spec import DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, Cell
    from bench.core.tasks import RunCell

    print("\n| method | granularity | cell s | scoring s | dense AUC | pruned AUC (bnrecal) |")
    print("|---|---|---|---|---|---|")
    for method, granularity in CELLS:
        version = plugins.get(method).version
        cell = Cell("bloodmnist", 28, "vit", method, version, granularity, "layer", 0.5,
                    "bnrecal", 0, DEFAULT_EPOCHS["vit"], 10, DEFAULT_MIN_STEPS)
        start = time.perf_counter()
        out = execute(RunCell(cell), cache)
        seconds = time.perf_counter() - start
        if not out.ok:
            print(f"| {method} | {granularity} | failed: {out.error} | | | |")
            continue
        m = out.result
        print(f"| {method} | {granularity} | {seconds:.1f} | {m['score_seconds']:.2f} | "
              f"{m['dense']['auc']:.3f} | {m['recovered']['auc']:.3f} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache")))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-cells", action="store_true", help="only the parameter/MAC table")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    counts()
    if not args.skip_cells:
        cells(args.cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
