"""What a scoring request costs beyond ``score()``: fresh processes against a scoring server.

Scores the synthetic smallcnn with each given method ``--requests`` times, once with every
scoring process started from scratch (``XPRUNE_SCORING=fresh``) and once forked from the
method's scoring server (the default), and prints the median wall time per request, the
median time inside ``score()``, and the ratio. The scores of both modes must be identical
(checked). The first server request includes the server's start-up (shown separately).

    python benchmarks/scoring_startup.py [--methods magnitude,taylor,lrp-epsilon] [--requests 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="magnitude,taylor,lrp-epsilon")
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()

    from bench.compute import kernels

    kernels.pin()
    import torch

    from bench import plugins
    from bench.compute import data, models, sandbox

    torch.set_num_threads(1)
    dataset = data.load(data.SYNTHETIC)
    torch.manual_seed(0)
    model = models.build("smallcnn", dataset.info.n_channels, dataset.info.n_classes).eval()
    batch = data.reference_batch(dataset, 2, 0)
    print(f"sandbox: {sandbox.sandbox_mode()}; {args.requests} requests per method and mode, "
          "smallcnn channel scores, seconds (median)\n")
    print("| method | fresh: wall | server: first (start-up) | server: later wall | "
          "score() | fresh / server |")
    print("|---|---:|---:|---:|---:|---:|")
    for method in args.methods.split(","):
        source = plugins.info(method).source
        walls: dict[str, list[float]] = {"fresh": [], "server": []}
        inside: list[float] = []
        results = {}
        for mode in ("fresh", "server"):
            os.environ[sandbox.SCORING_ENV] = mode
            sandbox.close_servers()
            for _ in range(args.requests):
                start = time.perf_counter()
                scores, seconds = sandbox.score(source, method, model, "channel", batch, 0, 600)
                walls[mode].append(time.perf_counter() - start)
                inside.append(seconds)
                results.setdefault(mode, scores)
        sandbox.close_servers()
        same = all(torch.equal(results["fresh"][k], results["server"][k]) for k in results["fresh"])
        if not same:
            raise SystemExit(f"error: {method}: the server's scores differ from a fresh process's")
        fresh, later = statistics.median(walls["fresh"]), statistics.median(walls["server"][1:])
        print(f"| {method} | {fresh:.2f} | {walls['server'][0]:.2f} | {later:.2f} | "
              f"{statistics.median(inside):.3f} | {fresh / later:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
