"""What MLflow logging costs: one cell's run timed per record, and the coordinator's share.

Logs ``--cells`` records of a reports folder (every k-th by path, so several methods and
sparsities) into a fresh SQLite store in a temporary folder, first each in the calling
thread (``Tracker.write_cell``: the cost of one cell's run; the first pays MLflow's imports),
then the same records again, into a second parent, as the coordinator does
(``Tracker.log_cell``: queued to the writer thread), then the run's summary with its setting
and curve runs. Prints the store's creation, the per-cell times (median, mean, 90th
percentile, max; records that keep heatmaps render a PNG), the coordinator's time per
``log_cell`` call, how long the queue took to drain, and the summary's time.

    PYTHONPATH=. python benchmarks/tracking_cost.py [--records reports/bloodmnist/smallcnn]
        [--cells 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, default=Path("reports/bloodmnist/smallcnn"))
    parser.add_argument("--cells", type=int, default=50)
    args = parser.parse_args()
    from bench.results import records
    from bench.run.report import summarize_run
    from bench.run.tracking import Tracker

    paths = sorted(args.records.rglob("*.json"))
    paths = paths[::max(1, len(paths) // max(args.cells, 1))][:args.cells]
    if not paths:
        print(f"error: no records under {args.records}", file=sys.stderr)
        return 2
    recs = [records.read(p) for p in paths]
    with tempfile.TemporaryDirectory() as tmp:
        chosen = Path(tmp) / "records"
        chosen.mkdir()
        for rec in recs:
            records.write(chosen, rec)
        started = time.perf_counter()
        tracker = Tracker("xprune/tracking-cost", "tracking-cost", {"cells": len(recs)},
                          uri=f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        setup = time.perf_counter() - started
        times, maps = [], 0
        for rec in recs:
            started = time.perf_counter()
            tracker.write_cell(rec)
            times.append(time.perf_counter() - started)
            maps += "maps" in ((rec["metrics"] or {}).get("transparency") or {})
        tracker.finish()
        second = Tracker("xprune/tracking-cost", "tracking-cost queued", {},
                         uri=f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        queued = []
        for rec in recs:
            started = time.perf_counter()
            second.log_cell(rec)
            queued.append(time.perf_counter() - started)
        started = time.perf_counter()
        second.flush()
        drain = time.perf_counter() - started
        summary = summarize_run(chosen, len(recs), {"ok": len(recs)}, 0.0)
        started = time.perf_counter()
        second.log_summary(*summary)
        summary_seconds = time.perf_counter() - started
        second.finish()
    ms_first, ms = times[0] * 1000, sorted(t * 1000 for t in times[1:])
    curves = sum(len(s["methods"]) for s in summary[2])
    print(f"{len(recs)} records from {args.records} ({maps} with heatmaps)")
    print(f"fresh SQLite store and parent run: {setup:.1f} s")
    print(f"first cell (MLflow's imports): {ms_first:.0f} ms")
    print(f"one cell's run, the others: median {statistics.median(ms):.0f} ms, mean "
          f"{statistics.fmean(ms):.0f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms, "
          f"max {ms[-1]:.0f} ms")
    print(f"the coordinator's log_cell call (queued): max {max(queued) * 1000:.2f} ms; "
          f"the queue drained {drain:.1f} s after the last call")
    print(f"log_summary: {summary_seconds:.1f} s for {len(summary[2])} settings and "
          f"{curves} curve runs ({summary_seconds / max(curves, 1) * 1000:.0f} ms per curve)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
