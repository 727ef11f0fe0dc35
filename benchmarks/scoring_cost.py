"""Scoring cost of every method: time as a ratio to one plain forward+backward, peak memory.

Each (backbone, method, granularity) is measured in a fresh process on the reference set
(10 images per class of BloodMNIST: 80 images, 3x28x28) with an untrained backbone, on
``--threads`` threads. Ratio = scoring seconds / seconds of one loss forward+backward over
the same images. Peak = the process's peak RSS during scoring minus its RSS just before.

    python benchmarks/scoring_cost.py [--backbones vgg,resnet18,vit] [--methods a,b] [--threads 1]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def measure(backbone: str, method: str, granularity: str, threads: int, dataset: str) -> dict:
    """Run in a child process: reference time, scoring time, peak memory."""
    import torch

    from bench import plugins
    from bench.compute import data, models
    from bench.compute.scoring import run_method

    torch.set_num_threads(threads)
    ds = data.load(dataset)
    batch = data.reference_batch(ds, 10, 0)
    torch.manual_seed(0)
    model = models.build(backbone, ds.info.n_channels, ds.info.n_classes).eval()
    cls = plugins.get(method).cls
    run_method(cls, model, granularity, batch, 0)  # warm-up (lazy imports, allocator)
    start = time.perf_counter()
    model.zero_grad()
    batch.loss(model(batch.x)).backward()
    plain = time.perf_counter() - start
    before = _rss_mb()
    _, seconds = run_method(cls, model, granularity, batch, 0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"plain": plain, "seconds": seconds, "peak_mb": max(0.0, peak - before),
            "images": len(batch)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="vgg,resnet18")
    parser.add_argument("--methods", default="*")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", default="bloodmnist")
    args = parser.parse_args()

    from bench import plugins
    from bench.core.spec import applicable

    catalogue = plugins.catalogue()
    methods = catalogue.expand(args.methods.split(","))
    ctx = mp.get_context("spawn")
    print("| backbone | method | granularity | images | scoring s | x fwd+bwd | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for backbone in args.backbones.split(","):
        for method in methods:
            cls = catalogue.get(method).cls
            for granularity in cls.granularities:
                if not applicable(backbone, granularity, cls.architectures):
                    continue  # never planned: heads on a CNN, zennit LRP on the ViT, ...
                with ctx.Pool(1) as pool:
                    r = pool.apply(measure, (backbone, method, granularity, args.threads,
                                             args.dataset))
                print(f"| {backbone} | {method} | {granularity} | {r['images']} | "
                      f"{r['seconds']:.2f} | {r['seconds'] / r['plain']:.1f} | "
                      f"{r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
