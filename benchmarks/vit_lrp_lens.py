"""Which LRP lens survives pruning on the ViT? Dense-vs-pruned map Spearman of zennit's
EpsilonPlusFlat (``lrp-epf``), AttnLRP (``lrp-attn``) and IG on a trained ViT baseline.

Loads (or trains) the ViT baseline of one dataset and seed, scores it with ``magnitude``,
prunes MLP neurons and attention heads at a few sparsities (layer scope) and prints the mean
per-image Spearman of each explainer's dense and pruned maps on the 64 probe images the
transparency stage uses (docs/transparency.md, "Which LRP lens").

    XPRUNE_DATA_ROOT=... python benchmarks/vit_lrp_lens.py [--dataset bloodmnist] [--seed 0]
        [--cache DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

EXPLAINERS = ("lrp-epf", "lrp-attn", "ig")
POINTS = (("channel", 0.1), ("channel", 0.3), ("channel", 0.5), ("head", 0.3), ("head", 0.5))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="bloodmnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache")))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from bench import plugins
    from bench.compute import baseline, data, prune, scoring, transparency
    from bench.compute.explain import probe
    from bench.core.spec import DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, BaselineKey

    torch.set_num_threads(args.threads)
    dataset = data.load(args.dataset, 28)
    key = BaselineKey(args.dataset, 28, "vit", args.seed, DEFAULT_EPOCHS["vit"], DEFAULT_MIN_STEPS)
    model, meta = baseline.get(key, dataset, args.cache)
    info = dataset.info
    chosen = probe(dataset.test.y, transparency.PROBE_IMAGES, info.n_classes, args.seed,
                   info.multi_label)
    x = dataset.test.x[chosen.index]
    batch = data.reference_batch(dataset, 10, args.seed)
    magnitude = plugins.get("magnitude").cls
    print(f"{args.dataset} ViT seed {args.seed}: test AUC {meta['test']['auc']:.3f}; "
          f"{len(x)} probe images; magnitude scores, layer scope")
    print("| pruned | " + " | ".join(f"`{e}`" for e in EXPLAINERS) + " |")
    print("|---|" + "---|" * len(EXPLAINERS))
    for granularity, sparsity in POINTS:
        scores, _ = scoring.run_method(magnitude, model, granularity, batch, args.seed)
        pruned = prune.prune(model, scores, granularity, "layer", sparsity, x[:1], args.seed)
        rho = transparency.measure(model, pruned.model, x, chosen.target, EXPLAINERS).metrics
        what = "MLP neurons" if granularity == "channel" else "heads"
        print(f"| {100 * sparsity:.0f}% of the {what} | "
              + " | ".join(f"{rho[e]['spearman']:.3f}" for e in EXPLAINERS) + " |")
    same = transparency.measure(model, copy.deepcopy(model), x, chosen.target, EXPLAINERS).metrics
    print("| a copy of the dense model | "
          + " | ".join(f"{same[e]['spearman']:.3f}" for e in EXPLAINERS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
