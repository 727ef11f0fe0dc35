"""Is ``--device cpu`` the engine main always ran? Run a reduced quick preset twice and diff.

Runs ``xprune run --preset quick`` on a reduced grid twice, each in its own output folder,
cache and MLflow store: once as before (no ``--device``) and once with ``--device cpu``,
then compares the two record sets: the same cell hashes, and per cell the same ``cell``
block and the same metrics, exactly (== on the parsed JSON), leaving out what measures
time (latency medians, scoring / pruning / recovery seconds). ``--reference-code DIR``
makes the first run use the engine at DIR instead (e.g. ``git archive <main> bench methods``
unpacked there), which compares this branch with that code.

    XPRUNE_DATA_ROOT=... python benchmarks/device_identity.py [--datasets breastmnist]
        [--backbones smallcnn] [--methods magnitude,taylor,lrp-epsilon,ig]
        [--sparsities 0.5,0.9] [--reference-code DIR]

Exit status 0 when every record matches, 1 otherwise (the differences are printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from records_identity import REPO, TIMINGS, run  # this folder is on sys.path here


def comparable(record: dict) -> dict:
    """What must be identical: the coordinates and every metric that is not a time."""
    metrics = {k: v for k, v in (record["metrics"] or {}).items() if k not in TIMINGS}
    return {"status": record["status"], "cell": record["cell"], "metrics": metrics}


def load(folder: Path) -> dict[str, dict]:
    return {p.stem: comparable(json.loads(p.read_text()))
            for p in sorted((folder / "run" / "records").glob("*.json"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="breastmnist")
    parser.add_argument("--backbones", default="smallcnn")
    parser.add_argument("--methods", default="magnitude,taylor,lrp-epsilon,ig")
    parser.add_argument("--sparsities", default="0.5,0.9")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--reference-code", type=Path, default=REPO,
                        help="engine for the first (default-device) run; default: this checkout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xprune-device-") as tmp:
        first, second = Path(tmp) / "default", Path(tmp) / "cpu"
        first.mkdir()
        second.mkdir()
        run(args.reference_code.resolve(), first, args)
        run(REPO, second, args, ["--device", "cpu"])
        a, b = load(first), load(second)
    differences = [f"cell {h}: only in the {'first' if h in a else 'second'} run"
                   for h in sorted(set(a) ^ set(b))]
    for h in sorted(set(a) & set(b)):
        for part in ("status", "cell", "metrics"):
            if a[h][part] != b[h][part]:
                keys = ([k for k in a[h][part] if a[h][part].get(k) != b[h][part].get(k)]
                        if isinstance(a[h][part], dict) else [part])
                differences.append(f"cell {h}: {part} differs ({', '.join(map(str, keys))})")
    for line in differences:
        print(line)
    print(f"{len(set(a) & set(b))} cells in both runs, {len(differences)} difference(s): "
          f"{'identical' if not differences else 'NOT identical'} (timings left out: "
          f"{', '.join(TIMINGS)})")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
