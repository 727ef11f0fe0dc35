"""Cost of the transparency stage per cell, next to the cost of the cell itself.

For each dataset x backbone (trained baselines, cached in ``--cache``), on the probe set
(``--images`` class-balanced test images), with ``--threads`` torch threads:

- the ``dense reference`` row: the dense model's maps and deletion curves (once per
  baseline, then cached; timed once, so it includes first-call warm-up);
- per cell (method ``--method``, each granularity x sparsity, layer scope, bnrecal):
  ``cell s`` = ``bench.compute.runner.run_cell`` with baseline and scores cached, and
  ``transparency s`` = ``bench.compute.transparency.measure`` on the same pruned, recovered model
  with the dense reference cached (pruned maps for every explainer + deletion + metrics).

Each time is the median of ``--repeats`` runs. ``--sweep`` also prints the parts (LRP, IG
per step count, deletion per step count) on the pruned models, to choose the step counts.

    python benchmarks/transparency_cost.py [--cache DIR] [--datasets a,b] [--sweep]
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from pathlib import Path


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pruned_model(cell, dataset, cache: Path):
    """The cell's pruned, recovered, finalised model, exactly as run_cell builds it."""
    from bench.compute import baseline, prune, recover, scoring

    model, _ = baseline.get(cell.baseline, dataset, cache)
    scored = scoring.get(cell.scores, model, dataset, cache)
    pruned = prune.prune(model, scored["scores"], cell.granularity, cell.scope, cell.sparsity,
                         dataset.test.x[:1], cell.seed)
    pruned.model, _ = recover.recover(pruned.model, cell.recovery, dataset, cell.seed)
    return model, prune.finalize(pruned)


def sweep(final, x, target, repeats: int, multi_label: bool) -> str:
    """Seconds of each part on one pruned model, for several IG / deletion step counts."""
    from bench.compute import explain, transparency

    lrp = partial(explain.explain, "lrp-epf", final, x, target)
    parts = [f"lrp {median_seconds(lrp, repeats):.3f}"]
    for steps in (4, 8, 16, 32):
        ig = explain.Explainer("ig", "", partial(explain.integrated_gradients, steps=steps))
        parts.append(f"ig{steps} {median_seconds(partial(ig, final, x, target), repeats):.3f}")
    maps = {n: explain.explain(n, final, x, target) for n in ("lrp-epf", "ig")}
    for k in (4, 8, 16):
        run = partial(transparency.deletion_curves, final, x, target, maps, multi_label, k)
        parts.append(f"deletion{k} x2 {median_seconds(run, repeats):.3f}")
    return ", ".join(parts)


def time_baseline(flag: str, backbone: str, args) -> list[tuple]:
    """(granularity, sparsity, cell s, transparency s, parts) per cell of one baseline."""
    from bench import plugins
    from bench.compute import data, explain, runner, transparency
    from bench.core import spec

    ds, cache = data.load(flag), Path(args.cache)
    preset = spec.load_spec("quick")
    version = plugins.get(args.method).cls.version
    probe = explain.probe(ds.test.y, args.images, ds.info.n_classes, 0, ds.info.multi_label)
    x, target, multi = ds.test.x[probe.index], probe.target, ds.info.multi_label
    rows, ref = [], None
    for granularity in args.granularities.split(","):
        for sparsity in map(float, args.sparsities.split(",")):
            cell = spec.Cell(flag, 28, backbone, args.method, version, granularity, "layer",
                             sparsity, "bnrecal", 0, preset.epochs_for(backbone),
                             preset.reference_per_class)
            dense, final = pruned_model(cell, ds, cache)
            if ref is None:
                start = time.perf_counter()
                ref = transparency.explained(dense, x, target, multi_label=multi)
                rows.append(("dense reference", "-", None, time.perf_counter() - start, ""))
            cell_s = median_seconds(partial(runner.run_cell, cell, cache), args.repeats)
            stage = partial(transparency.measure, dense, final, x, target, dense_ref=ref,
                            multi_label=multi)
            parts = sweep(final, x, target, args.repeats, multi) if args.sweep else ""
            rows.append((granularity, sparsity, cell_s, median_seconds(stage, args.repeats),
                         parts))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="breastmnist,pneumoniamnist")
    parser.add_argument("--backbones", default="smallcnn,vgg")
    parser.add_argument("--method", default="magnitude")
    parser.add_argument("--granularities", default="channel,weight")
    parser.add_argument("--sparsities", default="0.3,0.5,0.7,0.9")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", default=".xprune-cache")
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()

    import torch

    from bench.compute import explain, transparency

    torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, {args.images} probe images, IG steps "
          f"{explain.IG_STEPS}, deletion steps {transparency.DELETION_STEPS}\n")
    print("| dataset | backbone | granularity | sparsity | cell s | transparency s | ratio |")
    print("|---|---|---|---|---|---|---|")
    cells, stages = [], []
    for flag in args.datasets.split(","):
        for backbone in args.backbones.split(","):
            for granularity, sparsity, cell_s, stage_s, parts in time_baseline(flag, backbone,
                                                                               args):
                ratio = f"{stage_s / cell_s:.0%}" if cell_s else "(once per baseline)"
                cell_text = f"{cell_s:.2f}" if cell_s else "-"
                print(f"| {flag} | {backbone} | {granularity} | {sparsity} | {cell_text} | "
                      f"{stage_s:.2f} | {ratio} |", flush=True)
                if parts:
                    print(f"| | | parts (s) | {parts} | | | |", flush=True)
                if cell_s:
                    cells.append(cell_s)
                    stages.append(stage_s)
    print(f"\nmean per cell over {len(cells)} cells: cell {statistics.mean(cells):.2f} s, "
          f"transparency {statistics.mean(stages):.2f} s "
          f"(+{sum(stages) / sum(cells):.0%} of the cells' own time)")


if __name__ == "__main__":
    main()
