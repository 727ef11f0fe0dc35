"""Does a refactoring leave the records alone? Run a reduced quick preset with reference code
and with this checkout, and diff every record.

Runs ``xprune run --preset quick`` on a reduced grid twice with the same arguments, each in
its own output folder, cache and MLflow store: once with the engine at ``--reference-code``
(e.g. ``git archive <commit> bench methods`` unpacked there) and once with this checkout.
Then compares the two record sets: the same cell hashes, and per cell the same ``status``,
``error``, ``cell``, ``method`` and ``dataset`` blocks, the same metrics leaving out what
measures time (latency, scoring / pruning / recovery seconds), and the same provenance
leaving out what names the run (git commit, creation time, seconds), all exactly (== on
the parsed JSON).

    XPRUNE_DATA_ROOT=... python benchmarks/records_identity.py --reference-code DIR
        [--datasets breastmnist] [--backbones smallcnn]
        [--methods magnitude,taylor,lrp-epsilon,ig] [--sparsities 0.5,0.9]
        [--work DIR] [--keep-reference]

``--work DIR`` keeps the runs in DIR (default: a temporary folder); with
``--keep-reference`` a reference run already there is resumed (``xprune run`` recomputes
nothing it has records for) instead of started afresh. This checkout's run always starts
from an empty folder. Exit status 0 when every record matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMINGS = ("latency", "score_seconds", "prune_seconds", "recover_seconds")
RUN_NAMES = ("git_commit", "created", "seconds")  # provenance that names the run, not the result
BLOCKS = ("status", "error", "cell", "method", "dataset", "metrics", "provenance")


def run(code: Path, out: Path, args: argparse.Namespace, extra: Sequence[str] = ()) -> None:
    """One ``xprune run`` with the engine at ``code`` into ``out`` (own cache and MLflow),
    on the grid ``args`` names, with ``extra`` options."""
    env = {**os.environ, "PYTHONPATH": str(code), "XPRUNE_CACHE": str(out / "cache"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{out / 'mlflow.db'}",
           "XPRUNE_META_CACHE": str(out / "plugins.json")}
    command = [sys.executable, "-m", "bench.cli", "run", "--preset", "quick",
               "--datasets", args.datasets, "--backbones", args.backbones,
               "--methods", args.methods, "--sparsities", args.sparsities,
               "--workers", str(args.workers), "--out", str(out / "run"), *extra]
    print(f"$ (PYTHONPATH={code}) {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=out, env=env, check=True)


def comparable(record: dict) -> dict:
    """What must be identical: everything but timings and the run's own name and time."""
    out = {k: record[k] for k in BLOCKS}
    out["metrics"] = {k: v for k, v in (record["metrics"] or {}).items() if k not in TIMINGS}
    out["provenance"] = {k: v for k, v in record["provenance"].items() if k not in RUN_NAMES}
    return out


def load(folder: Path) -> dict[str, dict]:
    return {p.stem: comparable(json.loads(p.read_text()))
            for p in sorted((folder / "run" / "records").glob("*.json"))}


def differences(a: dict[str, dict], b: dict[str, dict]) -> list[str]:
    """One line per cell only in one run and per block that differs."""
    out = [f"cell {h}: only in the {'reference' if h in a else 'checkout'} run"
           for h in sorted(set(a) ^ set(b))]
    for h in sorted(set(a) & set(b)):
        for part in BLOCKS:
            x, y = a[h][part], b[h][part]
            if x != y:
                keys = ([k for k in {**x, **y} if x.get(k) != y.get(k)]
                        if isinstance(x, dict) and isinstance(y, dict) else [part])
                out.append(f"cell {h}: {part} differs ({', '.join(map(str, keys))})")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-code", type=Path, required=True,
                        help="folder holding the reference engine's bench/ and methods/")
    parser.add_argument("--datasets", default="breastmnist")
    parser.add_argument("--backbones", default="smallcnn")
    parser.add_argument("--methods", default="magnitude,taylor,lrp-epsilon,ig")
    parser.add_argument("--sparsities", default="0.5,0.9")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here")
    parser.add_argument("--keep-reference", action="store_true",
                        help="resume a reference run already in --work")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xprune-identity-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        reference, checkout = work / "reference", work / "checkout"
        if not args.keep_reference:
            shutil.rmtree(reference, ignore_errors=True)
        shutil.rmtree(checkout, ignore_errors=True)
        reference.mkdir(parents=True, exist_ok=True)
        checkout.mkdir(parents=True)
        run(args.reference_code.resolve(), reference, args)
        run(REPO, checkout, args)
        a, b = load(reference), load(checkout)
    found = differences(a, b)
    for line in found:
        print(line)
    both = len(set(a) & set(b))
    print(f"{both} cells in both runs ({sum(r['status'] == 'ok' for r in a.values())} ok in "
          f"the reference), {len(found)} difference(s): "
          f"{'identical' if not found else 'NOT identical'} (left out: metrics "
          f"{', '.join(TIMINGS)}; provenance {', '.join(RUN_NAMES)})")
    return 1 if found or not both else 0


if __name__ == "__main__":
    sys.exit(main())
