"""Does the reference set's size change the standing? The channel grid at 10 and at 50 images
per class (issue 19).

Runs the published channel setting (layer scope, BatchNorm re-calibration, sparsities
0.05-0.9, seeds 0-2) of two datasets and both CNNs again with ``reference_per_class`` = 50
(the methods score on 5x more images; baselines, pruning, recovery and evaluation are the
published ones, transparency off: it does not enter the curve areas), then compares, per
method, the curve areas (each metric) against the published 10-per-class records of the same
settings: the mean change, the change of each method's margin over random, the rank order, and
the mean scoring time per score set.

    XPRUNE_DATA_ROOT=... python benchmarks/reference_size.py [--per-class 50] [--workers 2]
        [--datasets breastmnist,bloodmnist] [--backbones smallcnn,vgg] [--published reports]

It needs the published records (``--published``) for the 10-per-class side and shares the
run's cache (``XPRUNE_CACHE``) for the baselines.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

SPARSITIES = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]


def spec(per_class: int, datasets: list[str], backbones: list[str]) -> dict:
    """The published channel setting with another reference-set size."""
    return {"name": f"reference-size-{per_class}", "datasets": datasets, "backbones": backbones,
            "methods": ["*"], "granularities": ["channel"], "scopes": ["layer"],
            "sparsities": SPARSITIES, "recovery": ["bnrecal"], "seeds": [0, 1, 2],
            "min_steps": 1000, "reference_per_class": per_class, "transparency": False}


def run(per_class: int, datasets: list[str], backbones: list[str], workers: int) -> Path:
    """Compute the grid with ``xprune run`` (resumable) and return its records folder."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(yaml.safe_dump(spec(per_class, datasets, backbones)))
        subprocess.run([sys.executable, "-m", "bench.cli", "run", str(path), "--workers",
                        str(workers)], check=True)
    return Path("runs") / f"reference-size-{per_class}" / "records"


def compare(records: list[dict], sizes: tuple[int, int]) -> None:
    """Print, per metric, each method's curve area at both sizes and its margin over random."""
    from bench.results.summary import METRIC_NAMES, METRICS, summarize_all

    small, large = sizes
    summaries = summarize_all(records)
    for metric in METRICS:
        settings, _, _ = summaries[metric]
        areas: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
        for s in settings:
            for row in s.rows:
                if row.complete and row.area is not None:
                    areas[(s.key.dataset, s.key.backbone, row.method)][s.key.reference_per_class] \
                        = row.area.mean
        methods = sorted({m for (_, _, m) in areas})
        pairs = sorted({(d, b) for (d, b, _) in areas})
        print(f"# Curve area of {METRIC_NAMES[metric]} (%, mean over seeds), "
              f"{small} vs {large} reference images per class; {len(pairs)} settings\n")
        print(f"| method | area at {small} | area at {large} | change | - random at {small} "
              f"| - random at {large} | higher at {large} in |\n|---|---|---|---|---|---|---|")
        for m in methods:
            both = [(d, b) for d, b in pairs if {small, large} <= set(areas[(d, b, m)])]
            if not both:
                continue
            a10 = [areas[(d, b, m)][small] for d, b in both]
            a50 = [areas[(d, b, m)][large] for d, b in both]
            r10 = [areas[(d, b, m)][small] - areas[(d, b, "random")][small] for d, b in both]
            r50 = [areas[(d, b, m)][large] - areas[(d, b, "random")][large] for d, b in both]
            up = sum(y > x for x, y in zip(a10, a50))
            print(f"| {m} | {100 * statistics.fmean(a10):.1f} | {100 * statistics.fmean(a50):.1f} "
                  f"| {100 * (statistics.fmean(a50) - statistics.fmean(a10)):+.1f} | "
                  f"{100 * statistics.fmean(r10):+.1f} | {100 * statistics.fmean(r50):+.1f} | "
                  f"{up} of {len(both)} |")
        for size in sizes:
            order = sorted(methods, key=lambda m: -statistics.fmean(
                [areas[(d, b, m)][size] for d, b in pairs if size in areas[(d, b, m)]] or [0]))
            print(f"\norder at {size} per class: " + " > ".join(order))
        print()


def scoring_cost(records: list[dict], sizes: tuple[int, int]) -> None:
    """Mean seconds per score set (``metrics.score_seconds``, one per score hash) by method."""
    seconds: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for r in records:
        if r["status"] == "ok":
            key = (r["cell"]["method"], r["cell"]["reference_per_class"])
            seconds[key][r["provenance"]["score_hash"]] = r["metrics"]["score_seconds"]
    methods = sorted({m for m, _ in seconds})
    print("# Scoring time per score set (s, mean over datasets, backbones and seeds)\n")
    print(f"| method | {sizes[0]} per class | {sizes[1]} per class | ratio |\n|---|---|---|---|")
    for m in methods:
        values = [statistics.fmean(seconds[(m, s)].values()) if seconds.get((m, s)) else None
                  for s in sizes]
        ratio = f"{values[1] / values[0]:.1f}x" if all(values) and values[0] > 0 else "-"
        print(f"| {m} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in values)
              + f" | {ratio} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--datasets", default="breastmnist,bloodmnist")
    parser.add_argument("--backbones", default="smallcnn,vgg")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--published", type=Path, default=Path("reports"))
    parser.add_argument("--no-run", action="store_true", help="compare what is already computed")
    args = parser.parse_args()

    from bench.results import records

    datasets, backbones = args.datasets.split(","), args.backbones.split(",")
    folder = (Path("runs") / f"reference-size-{args.per_class}" / "records" if args.no_run
              else run(args.per_class, datasets, backbones, args.workers))
    wanted = set(SPARSITIES)

    def keep(r: dict) -> bool:
        c = r["cell"]
        return (c["dataset"] in datasets and c["backbone"] in backbones
                and c["granularity"] == "channel" and c["scope"] == "layer"
                and c["recovery"] == "bnrecal" and c["sparsity"] in wanted
                and c["seed"] in (0, 1, 2) and records.protocol(r) == 3)

    published = [r for r in records.iter_records(args.published) if keep(r)
                 and r["cell"]["reference_per_class"] == 10]
    larger = [r for r in records.iter_records(folder) if keep(r)]
    if not published or not larger:
        print(f"nothing to compare: {len(published)} published 10-per-class records, "
              f"{len(larger)} at {args.per_class} per class", file=sys.stderr)
        return 1
    sizes = (10, args.per_class)
    compare(published + larger, sizes)
    scoring_cost(published + larger, sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
