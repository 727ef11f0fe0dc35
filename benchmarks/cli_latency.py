"""How fast the command line answers on this machine, against the goals of issue 15.

    XPRUNE_DATA_ROOT=/path/to/medmnist python benchmarks/cli_latency.py [--run-dir DIR]

Four timings, each the median wall time of ``--repeats`` fresh ``xprune`` processes:

1. ``xprune --help``                            goal < 2 s
2. ``xprune list methods`` (metadata cache warm) goal < 2 s (the cold first call is shown too)
3. ``xprune run --preset quick --dry-run``       goal < 5 s (a fresh folder: nothing finished)
4. a no-op re-run of the finished quick preset  goal < 5 s

For 4, ``--run-dir`` names the working folder of a real finished quick run (its
``runs/quick`` and ``mlflow.db``). Without it, the script writes one schema-valid record per
quick-preset cell into a temporary folder (the numbers inside are made up: the no-op path
reads records, it does not interpret them), lets one untimed ``xprune run`` log them to
MLflow as any resumed run would, and then times the re-run that has nothing to do.
Performance goals live here, not in timed test assertions. Exit status 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOALS = {"xprune --help": 2.0, "xprune list methods": 2.0,
         "xprune run --preset quick --dry-run": 5.0, "no-op re-run of the finished quick preset": 5.0}


def xprune(*args: str, cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    """Run the real entry point in a fresh process; (seconds, result)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=cwd, env=env,
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"xprune {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return seconds, result


def median(repeats: int, *args: str, cwd: Path, env: dict[str, str]) -> float:
    return statistics.median(xprune(*args, cwd=cwd, env=env)[0] for _ in range(repeats))


def synthesize_finished_quick(folder: Path) -> int:
    """One schema-valid ok record per quick-preset cell under ``folder/runs/quick``."""
    sys.path.insert(0, str(REPO))
    from bench import plugins
    from bench.compute import data
    from bench.core import spec
    from bench.results import records
    from bench.run import coordinator

    plan = coordinator.plan(spec.load_spec("quick"), folder / "runs" / "quick", folder / "cache")
    catalogue = plugins.declarations()
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    for cell in plan.cells:
        info = data.info(cell.dataset)
        method = catalogue.get(cell.method).label.record_block()
        kept = 1 - cell.sparsity
        score = {"acc": 0.8, "auc": 0.9}
        records.write(plan.records_dir, {
            "schema_version": records.SCHEMA_VERSION, "cell_hash": cell.hash, "status": "ok",
            "error": None, "cell": cell.__dict__.copy(), "method": method,
            "dataset": {"flag": info.flag, "task": info.task, "n_classes": info.n_classes,
                        "synthetic": info.synthetic,
                        "md5": data.expected_md5(cell.dataset, cell.size)},
            "metrics": {"dense": score, "pruned": score, "recovered": score,
                        "params_dense": 10000, "params": int(10000 * kept),
                        "macs_dense": 10**6, "macs": int(10**6 * kept), "compression": 1 / kept,
                        "speedup": 1 / kept, "achieved_sparsity": cell.sparsity,
                        "latency_ms": {"dense_b1": 1.0, "pruned_b1": 1.0, "dense_b64": 9.0,
                                       "pruned_b64": 9.0},
                        "score_seconds": 0.1, "prune_seconds": 0.1, "recover_seconds": 0.1},
            "provenance": {"xprune_version": "0.1.0", "git_commit": "synthesized",
                           "baseline_hash": cell.baseline.hash, "score_hash": cell.scores.hash,
                           "versions": {"python": sys.version.split()[0]}, "created": created,
                           "seconds": 1.0}})
    return len(plan.cells)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path,
                        help="working folder of a real finished quick run (runs/quick, mlflow.db)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("XPRUNE_DATA_ROOT"):
        raise SystemExit("set XPRUNE_DATA_ROOT to the folder holding the MedMNIST .npz files")
    tmp = Path(tempfile.mkdtemp(prefix="xprune-latency-"))
    env = {**os.environ, "XPRUNE_CACHE": str(tmp / "cache"),
           "XPRUNE_META_CACHE": str(tmp / "plugins.json"), "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    results: dict[str, float] = {}
    try:
        results["xprune --help"] = median(args.repeats, "--help", cwd=tmp, env=env)
        cold, _ = xprune("list", "methods", cwd=tmp, env=env)
        results["xprune list methods"] = median(args.repeats, "list", "methods", cwd=tmp, env=env)
        dry = tmp / "dry"
        dry.mkdir()
        results["xprune run --preset quick --dry-run"] = median(
            args.repeats, "run", "--preset", "quick", "--dry-run", cwd=dry, env=env)
        if args.run_dir:
            work, source = args.run_dir.resolve(), f"the finished run in {args.run_dir}"
        else:
            work = tmp / "finished"
            n = synthesize_finished_quick(work)
            start = time.perf_counter()
            xprune("run", "--preset", "quick", cwd=work, env=env)  # logs them, like a resume
            source = (f"{n} synthesized records (their first re-run logged them to MLflow in "
                      f"{time.perf_counter() - start:.0f} s, untimed)")
        timings = [xprune("run", "--preset", "quick", cwd=work, env=env) for _ in range(args.repeats)]
        assert all("nothing to do" in r.stdout for _, r in timings), timings[-1][1].stdout
        results["no-op re-run of the finished quick preset"] = statistics.median(t for t, _ in timings)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"xprune CLI latency on {os.uname().nodename} ({os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}), median of {args.repeats}; python {sys.version.split()[0]}")
    print(f"(list methods, cold metadata cache: {cold:.2f} s; no-op re-run over {source})")
    failed = False
    for name, seconds in results.items():
        ok = seconds < GOALS[name]
        failed |= not ok
        print(f"  {name:<44} {seconds:6.2f} s  goal < {GOALS[name]:.0f} s  "
              f"{'pass' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
