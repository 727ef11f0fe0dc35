"""Do pinned kernels make the bits independent of the CPU's own? Run one small grid three
times and diff the baselines and records.

Runs ``xprune run`` on a small spec (the quick preset's settings reduced to BreastMNIST x
smallcnn x magnitude, channel, layer, bnrecal, sparsities 0.5 and 0.9, seed 0, and a
baseline of ``--min-steps`` optimizer steps, default 200, instead of 1000: cheap enough for a
shared 2-core machine) three times, each with its own output folder, cache and MLflow store,
under three environments:

* ``pinned``: the protocol as the engine runs it (``bench.compute.kernels`` pins AVX2);
* ``pinned-ask-native``: the same, with ``ATEN_CPU_CAPABILITY=avx512`` and
  ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_AMX`` asked for by the caller (the pin must win);
* ``native``: ``XPRUNE_NATIVE_KERNELS=1``, this machine's own kernels (AVX512 here).

It prints each run's baseline weight digests (``bench.compute.baseline.digest``), whether the two
pinned runs are bit-identical (baselines and records, leaving out timings and what names the
run), how many records of the native run differ from the pinned one, and the baseline
training time of each run (the pin's speed cost, as a same-machine ratio; noisy on a shared
machine).

    XPRUNE_DATA_ROOT=... python benchmarks/kernel_identity.py [--datasets breastmnist]
        [--backbones smallcnn] [--methods magnitude] [--sparsities 0.5,0.9] [--min-steps 200]

Exit status 0 when the pinned runs are identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from records_identity import REPO, TIMINGS  # this folder is on sys.path here

PIN_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "XPRUNE_NATIVE_KERNELS")
RUNS = {
    "pinned": {},
    "pinned-ask-native": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"},
    "native": {"XPRUNE_NATIVE_KERNELS": "1"},
}
SPEC = """name: kernel-identity
datasets: [{datasets}]
backbones: [{backbones}]
methods: [{methods}]
granularities: [channel]
scopes: [layer]
sparsities: [{sparsities}]
recovery: [bnrecal]
seeds: [0]
min_steps: {min_steps}
"""
RUN_NAMES = ("git_commit", "created", "seconds", "kernels")


def run(name: str, out: Path, args: argparse.Namespace) -> None:
    """One ``xprune run`` of the reduced grid into ``out`` under environment ``RUNS[name]``."""
    env = {k: v for k, v in os.environ.items() if k not in PIN_VARIABLES}
    env |= {"PYTHONPATH": str(REPO), "XPRUNE_CACHE": str(out / "cache"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{out / 'mlflow.db'}",
            "XPRUNE_META_CACHE": str(out / "plugins.json"), **RUNS[name]}
    spec = out / "spec.yaml"
    spec.write_text(SPEC.format(**vars(args)))
    command = [sys.executable, "-m", "bench.cli", "run", str(spec), "--workers", "1",
               "--out", str(out / "run")]
    print(f"$ [{name}: {' '.join(f'{k}={v}' for k, v in RUNS[name].items()) or 'as is'}] "
          f"xprune {' '.join(command[3:])}", flush=True)
    subprocess.run(command, cwd=out, env=env, check=True)


def baselines(out: Path) -> dict[str, tuple[str, float]]:
    """Baseline hash -> (weight digest, training seconds) of a run's cache."""
    import torch

    from bench.compute.baseline import digest

    found = {}
    for path in sorted((out / "cache" / "baselines").glob("*.pt")):
        entry = torch.load(path, map_location="cpu", weights_only=False)
        found[path.stem] = (digest(entry["state_dict"]), float(entry["seconds"]))
    return found


def records(out: Path) -> dict[str, dict]:
    """Cell hash -> what must be identical (timings and the run's own name left out)."""
    found = {}
    for path in sorted((out / "run" / "records").glob("*.json")):
        r = json.loads(path.read_text())
        r["metrics"] = {k: v for k, v in (r["metrics"] or {}).items() if k not in TIMINGS}
        r["provenance"] = {k: v for k, v in r["provenance"].items() if k not in RUN_NAMES}
        found[path.stem] = r
    return found


def kernels(out: Path) -> str:
    first = next(iter(sorted((out / "run" / "records").glob("*.json"))))
    k = json.loads(first.read_text())["provenance"]["kernels"]
    return f"capability {k['cpu_capability']}, pinned {k['pinned']}"


def differing(a: dict[str, dict], b: dict[str, dict]) -> list[str]:
    """Cells whose records differ (or exist in one run only)."""
    return sorted(h for h in set(a) | set(b) if a.get(h) != b.get(h))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="breastmnist")
    parser.add_argument("--backbones", default="smallcnn")
    parser.add_argument("--methods", default="magnitude")
    parser.add_argument("--sparsities", default="0.5,0.9")
    parser.add_argument("--min-steps", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xprune-kernels-") as tmp:
        outs = {name: Path(tmp) / name for name in RUNS}
        for name, out in outs.items():
            out.mkdir()
            run(name, out, args)
        base = {n: baselines(o) for n, o in outs.items()}
        recs = {n: records(o) for n, o in outs.items()}
        for name, out in outs.items():
            print(f"{name:18s} {kernels(out)}; baselines "
                  + ", ".join(f"{h}: digest {d[:12]} trained in {s:.1f} s"
                              for h, (d, s) in base[name].items()))
    digests = {n: {h: d for h, (d, _) in b.items()} for n, b in base.items()}
    pinned_records = differing(recs["pinned"], recs["pinned-ask-native"])
    native_records = differing(recs["pinned"], recs["native"])
    pinned_same = digests["pinned"] == digests["pinned-ask-native"]
    print(f"pinned vs pinned-ask-native: baselines {'identical' if pinned_same else 'DIFFER'}, "
          f"{len(pinned_records)} of {len(recs['pinned'])} records differ")
    print(f"pinned vs native: baselines "
          f"{'identical' if digests['pinned'] == digests['native'] else 'differ'}, "
          f"{len(native_records)} of {len(recs['pinned'])} records differ")
    for h in native_records:
        a, b = recs["pinned"].get(h, {}).get("metrics", {}), recs["native"].get(h, {}).get("metrics", {})
        print(f"  {h}: recovered acc pinned {a.get('recovered', {}).get('acc')}, native "
              f"{b.get('recovered', {}).get('acc')}; dense acc {a.get('dense', {}).get('acc')} "
              f"/ {b.get('dense', {}).get('acc')}")
    cost = [base["pinned"][h][1] / base["native"][h][1] for h in base["pinned"]
            if h in base["native"]]
    print("pin's cost, baseline training time pinned / native: "
          + ", ".join(f"{c:.2f}x" for c in cost))
    return 0 if pinned_same and not pinned_records else 1


if __name__ == "__main__":
    sys.exit(main())
