"""What channels-last memory format would buy a cell, and what it would cost the records.

Runs the cell protocol's heavy steps (evaluation of 624 test images, BatchNorm
re-calibration on 512, the transparency stage's explainers and deletion curves on the 64-image
probe) on a cached vgg or smallcnn baseline, interleaved between the default NCHW layout and
``torch.channels_last``, and prints the median seconds of each and whether the outputs are
bit-identical. Not a protocol setting: the records are computed in NCHW; switching would be a
protocol change (different bits), measured here before anyone proposes it.

    XPRUNE_DATA_ROOT=... python benchmarks/memory_format.py --backbone vgg --cache DIR [--repeats 3]

The baseline must be in the cache (``benchmarks/cell_profile.py`` trains it).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg")
    parser.add_argument("--dataset", default="breastmnist")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from bench.compute import kernels

    kernels.pin()
    import torch

    from bench.compute import baseline, bn, data, evaluate, transparency
    from bench.compute.explain import probe, reference_explainers
    from bench.core import spec

    torch.set_num_threads(1)
    preset = spec.load_spec("quick")
    key = spec.Cell(args.dataset, 28, args.backbone, "magnitude", "1", "channel", "layer", 0.5,
                    "bnrecal", 0, preset.epochs_for(args.backbone),
                    preset.reference_per_class).baseline
    dataset = data.load(args.dataset, 28)
    model, _ = baseline.get(key, dataset, args.cache, "cpu")
    info, test = dataset.info, dataset.test
    chosen = probe(test.y, transparency.PROBE_IMAGES, info.n_classes, 0, info.multi_label)
    names = reference_explainers(model)

    def steps(fmt: torch.memory_format) -> tuple[dict[str, float], list]:
        m = copy.deepcopy(model).to(memory_format=fmt)
        x = test.x.contiguous(memory_format=fmt)
        seconds, outputs = {}, []
        start = time.perf_counter()
        outputs.append(torch.from_numpy(evaluate.predict(m, x, info.task)))
        seconds["evaluate"] = time.perf_counter() - start
        start = time.perf_counter()
        bn.recalibrate(copy.deepcopy(m), dataset, 0, 512)
        seconds["bnrecal"] = time.perf_counter() - start
        start = time.perf_counter()
        done = transparency.explained(m, x[chosen.index], chosen.target, names, info.multi_label)
        seconds["transparency"] = time.perf_counter() - start
        outputs += [done.maps[n] for n in names] + [done.deletion[n] for n in names]
        return seconds, outputs

    times: dict[str, dict[str, list[float]]] = {"nchw": {}, "channels_last": {}}
    results = {}
    formats = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
    for r in range(args.repeats + 1):
        for name in (("nchw", "channels_last") if r % 2 else ("channels_last", "nchw")):
            seconds, outputs = steps(formats[name])
            results[name] = outputs
            if r:  # the first round warms up
                for step, s in seconds.items():
                    times[name].setdefault(step, []).append(s)
    identical = all(torch.equal(a, b) for a, b in zip(results["nchw"], results["channels_last"]))
    print(f"{args.backbone}/{args.dataset}, median of {args.repeats} interleaved runs, 1 thread, "
          f"seconds; outputs bit-identical: {identical}\n")
    print("| step | NCHW | channels-last | ratio |")
    print("|---|---:|---:|---:|")
    for step in times["nchw"]:
        a, b = (statistics.median(times[k][step]) for k in ("nchw", "channels_last"))
        print(f"| {step} | {a:.3f} | {b:.3f} | {a / b:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
