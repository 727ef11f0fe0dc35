"""Is an iterative ablation oracle a reference above the methods? Measured before it is shown.

The oracle removes channels a few percent at a time: at each step it measures, for every
remaining channel (every Conv2d output channel and hidden Linear neuron, as channel pruning
sees them), the change in task loss when that unit alone is zeroed, on a seeded
class-balanced *calibration* set drawn from the validation split (``--per-class`` images per
class, not the methods' reference set), and removes each layer's lowest-effect units up to the
step's fraction (signed: a unit whose removal lowers the loss goes first). The removal order
becomes its scores (earlier = lower), so the engine's own layer-scope channel pruning at
sparsity s removes exactly the oracle's first floor(s * n) units per layer; recovery and
evaluation are the engine's (``bench.compute.prune``, ``recover``, ``evaluate``).

The methods run through ``runner.run_cell`` on the same cached baseline (scores from their
scoring processes; transparency off), so every line of the table is the same protocol. A
unit is zeroed at the output of its BatchNorm when one follows it (ReLU(0) = 0: the unit
then contributes nothing downstream, as if removed), else at its own output.

    XPRUNE_DATA_ROOT=... python benchmarks/iterative_oracle.py --cache DIR
        [--dataset breastmnist] [--backbone smallcnn] [--sparsities 0.1,0.3,0.5,0.7,0.9]
        [--methods random,magnitude,taylor,lrp-epsilon] [--per-class 50] [--step 0.05]

Prints balanced accuracy (and AUC) after BatchNorm re-calibration per sparsity and method,
and the oracle's position. The baseline is the quick preset's seed-0 baseline (trained into
``--cache`` if missing).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def unit_outputs(model, sites):
    """Per site, the module whose output channel k is unit k: its BatchNorm if one follows."""
    from torch import nn

    modules = list(model.named_modules())
    where = {}
    for site in sites:
        index = next(i for i, (name, _) in enumerate(modules) if name == site.name)
        after = modules[index + 1][1] if index + 1 < len(modules) else None
        norm = isinstance(after, nn.modules.batchnorm._BatchNorm) and \
            after.num_features == site.shape[0]
        where[site.name] = after if norm else site.module
    return where


def oracle_scores(model, sites, x, y, step: float, top: float) -> tuple[dict, int]:
    """The removal order of the iterative ablation (scores: rank + 1); and the forward
    passes it took."""
    import math

    import torch
    import torch.nn.functional as F

    outputs = unit_outputs(model, sites)
    sizes = {s.name: s.shape[0] for s in sites}
    alive = {n: torch.ones(k, dtype=torch.bool) for n, k in sizes.items()}
    order: dict[str, list[int]] = {n: [] for n in sizes}
    probe: dict[str, int | None] = {n: None for n in sizes}

    def hook(name):
        def zero(module, args, out):
            mask = alive[name].clone()
            if probe[name] is not None:
                mask[probe[name]] = False
            shape = (1, -1) + (1,) * (out.ndim - 2)
            return out * mask.to(out.dtype).view(shape)
        return zero

    handles = [outputs[n].register_forward_hook(hook(n)) for n in sizes]
    passes = 0

    @torch.inference_mode()
    def loss() -> float:
        nonlocal passes
        passes += 1
        return float(F.cross_entropy(model(x), y))

    model.eval()
    try:
        for k in range(1, math.ceil(top / step - 1e-9) + 1):
            fraction = min(top, round(k * step, 9))  # not summed: 10 x 0.05 must be 0.5
            base = loss()
            for name, n in sizes.items():
                want = min(math.floor(fraction * n), n - 1) - len(order[name])
                if want <= 0:
                    continue
                effects = []
                for k in torch.nonzero(alive[name]).flatten().tolist():
                    probe[name] = k
                    effects.append((loss() - base, k))
                probe[name] = None
                for _, k in sorted(effects)[:want]:
                    alive[name][k] = False
                    order[name].append(k)
    finally:
        for handle in handles:
            handle.remove()
    scores = {}
    for name, n in sizes.items():
        rank = torch.full((n,), float(n))  # never removed: above every removed unit
        for r, k in enumerate(order[name]):
            rank[k] = float(r)
        scores[name] = rank + 1
    return scores, passes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--dataset", default="breastmnist")
    parser.add_argument("--backbone", default="smallcnn")
    parser.add_argument("--sparsities", default="0.1,0.3,0.5,0.7,0.9")
    parser.add_argument("--methods", default="random,magnitude,taylor,lrp-epsilon")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--step", type=float, default=0.05)
    args = parser.parse_args()

    from bench.compute import kernels

    kernels.pin()
    import torch

    from bench import plugins
    from bench.compute import baseline, data, evaluate, prune, recover, runner
    from bench.compute.explain import probe
    from bench.compute.units import find_sites
    from bench.core import spec

    torch.set_num_threads(1)
    sparsities = [float(s) for s in args.sparsities.split(",")]
    preset = spec.load_spec("quick")
    dataset = data.load(args.dataset, 28)
    info = dataset.info

    def cell(method: str, sparsity: float) -> spec.Cell:
        version = str(plugins.info(method).version) if method != "oracle" else "0"
        return spec.Cell(args.dataset, 28, args.backbone, method, version, "channel", "layer",
                         sparsity, "bnrecal", 0, preset.epochs_for(args.backbone),
                         preset.reference_per_class, transparency=False)

    model, _ = baseline.get(cell("random", 0.5).baseline, dataset, args.cache, "cpu")
    calib = probe(dataset.val.y, args.per_class * info.n_classes, info.n_classes, 0, False)
    x, y = dataset.val.x[calib.index], dataset.val.y.reshape(-1)[calib.index].long()
    start = time.perf_counter()
    scores, passes = oracle_scores(model, find_sites(model, "channel"), x, y, args.step,
                                   max(sparsities))
    oracle_seconds = time.perf_counter() - start

    rows: dict[str, dict[float, dict]] = {}
    example = dataset.test.x[:1]
    for s in sparsities:
        pruned = prune.prune(model, scores, "channel", "layer", s, example, 0)
        pruned.model, _ = recover.recover(pruned.model, "bnrecal", dataset, 0)  # as run_cell
        rows.setdefault("oracle", {})[s] = evaluate.task_scores(
            prune.finalize(pruned), dataset.test, info.task)
        for method in args.methods.split(","):
            rows.setdefault(method, {})[s] = runner.run_cell(cell(method, s), args.cache)["recovered"]
    chance = evaluate.chance(info.task, info.n_classes)
    print(f"{args.dataset} / {args.backbone}, channel, layer scope, bnrecal, seed 0: balanced "
          f"accuracy (AUC) on the test split; chance {chance:.3f}. Oracle: {len(x)} validation "
          f"images, steps of {args.step:g}, {passes} forward passes, {oracle_seconds:.0f} s\n")
    print("| method | " + " | ".join(f"{s:g}" for s in sparsities) + " | mean |")
    print("|---|" + "---:|" * (len(sparsities) + 1))
    for method, by in rows.items():
        cells = [f"{by[s]['bal_acc']:.3f} ({by[s]['auc'] or float('nan'):.3f})" for s in sparsities]
        mean = sum(by[s]["bal_acc"] for s in sparsities) / len(sparsities)
        print(f"| {method} | " + " | ".join(cells) + f" | {mean:.3f} |")
    above = sum(all(rows["oracle"][s]["bal_acc"] > rows[m][s]["bal_acc"]
                    for m in rows if m != "oracle") for s in sparsities)
    print(f"\noracle above every method at {above} of {len(sparsities)} sparsities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
