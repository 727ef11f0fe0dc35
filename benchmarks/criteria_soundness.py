"""Soundness of every criterion on the real trained baselines (issue: sound criteria).

For the seed-0 smallcnn and vgg baselines of the four shared MedMNIST datasets, prints for
every method and granularity:

* the largest share of a site's units tied at the site's minimum score, over all units and
  over the units with a first-order effect on the output (dead ReLUs excluded; see
  ``bench.compute.soundness.inert_units``); a criterion is degenerate when the latter exceeds 1%;
* on smallcnn, whether units made zero-effect (outgoing weights zeroed, own weights x4, as
  in ``xprune check``) land at the bottom of the ranking of every effect-based method.

    XPRUNE_DATA_ROOT=... python benchmarks/criteria_soundness.py [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DATASETS = ("breastmnist", "pneumoniamnist", "retinamnist", "bloodmnist")
BACKBONES = ("smallcnn", "vgg")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache")))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from bench import plugins
    from bench.compute import baseline, data, scoring, soundness
    from bench.core.spec import DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, BaselineKey

    torch.set_num_threads(args.threads)
    catalogue = plugins.catalogue()
    names = catalogue.builtins()
    print("| dataset | backbone | method | granularity | max tie at min (all units) | "
          "max tie at min (units with an effect) | zero-effect units last |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for flag in DATASETS:
        dataset = data.load(flag)
        batch = data.reference_batch(dataset, 10, 0)
        for backbone in BACKBONES:
            key = BaselineKey(flag, 28, backbone, 0, DEFAULT_EPOCHS[backbone], DEFAULT_MIN_STEPS)
            model, _ = baseline.get(key, dataset, args.cache)
            for granularity in ("channel", "weight"):
                inert = soundness.inert_units(model, granularity, batch)
                for name in names:
                    cls = catalogue.get(name).cls
                    if granularity not in cls.granularities:
                        continue
                    scores, _ = scoring.run_method(cls, model, granularity, batch, 0)
                    raw = max(soundness.tie_share(s) for s in scores.values())
                    live = max(soundness.tie_share(s, inert[n]) for n, s in scores.items())
                    worst = max(worst, live)
                    zero = "n/a"
                    if backbone == "smallcnn" and soundness.subject_to_zero_effect(cls):
                        modified, _ = scoring.run_method(
                            cls, soundness.with_zero_effect_units(model), granularity, batch, 0)
                        zero = "yes" if not soundness.zero_effect_problem(modified) else "NO"
                    print(f"| {flag} | {backbone} | {name} | {granularity} | {100 * raw:.2f}% | "
                          f"{100 * live:.2f}% | {zero} |", flush=True)
    print(f"\nlargest tie at the minimum among units with an effect: {100 * worst:.2f}% "
          f"(limit {100 * soundness.TIE_LIMIT:g}%)")
    return 0 if worst <= soundness.TIE_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
