"""What a finished ``xprune run`` reports to its MLflow parent run: counts, wall time, each
method's mean curve area, and the per-setting table (``summary.md``), all computed by
``bench.results.summary`` from the run's records."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping

from bench.results import records
from bench.results.summary import summarize


def summarize_run(records_dir: Path, total: int, counts: Mapping[str, int],
                  wall_seconds: float) -> tuple[dict[str, float], str]:
    """Summary metrics and a Markdown table of every setting in ``records_dir``."""
    recs = list(records.iter_records(records_dir)) if Path(records_dir).is_dir() else []
    settings, comparisons, failed = summarize(recs)
    metrics: dict[str, float] = {
        "cells_total": total, "cells_ok": counts.get("ok", 0),
        "cells_failed": counts.get("failed", 0), "records_ok": len(recs) - failed,
        "records_failed": failed, "wall_seconds": round(wall_seconds, 3)}
    areas: dict[str, list[float]] = defaultdict(list)
    for setting in settings:
        for row in setting.rows:
            areas[row.method].append(row.area.mean)
    metrics |= {f"area.{method}": statistics.fmean(v) for method, v in sorted(areas.items())}
    metrics |= {f"mean_rank.{c.slug}.{method}": rank for c in comparisons  # e.g. channel-cnn
                for method, rank in c.significance.mean_ranks.items()}
    return metrics, _markdown(settings, metrics)


def _fmt(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _markdown(settings: list, metrics: dict[str, float]) -> str:
    lines = ["# Run summary", "",
             f"{int(metrics['records_ok'])} ok and {int(metrics['records_failed'])} failed "
             f"record(s) of {int(metrics['cells_total'])} cells; this run: "
             f"{int(metrics['cells_ok'])} ok, {int(metrics['cells_failed'])} failed in "
             f"{metrics['wall_seconds']:.0f} s.", "",
             "Accuracy after recovery; area = mean accuracy over the sparsity range.", ""]
    for setting in settings:
        k = setting.key
        title = (f"## {k.dataset} / {k.backbone} / {k.granularity} / {k.scope} / "
                 f"{k.recovery} (dense acc {_fmt(setting.dense.mean)})")
        head = "| rank | method | area | " + " | ".join(f"s={s:g}" for s in setting.sparsities)
        lines += [title + (" — synthetic data" if setting.synthetic else ""), "",
                  head + " |", "|" + "---|" * (3 + len(setting.sparsities))]
        for row in setting.rows:
            accs = {p.sparsity: p.acc.mean for p in row.points}
            cells = " | ".join(_fmt(accs.get(s)) for s in setting.sparsities)
            rank = "–" if row.rank is None else f"{row.rank:g}"
            lines.append(f"| {rank} | {row.method} v{row.version} | {_fmt(row.area.mean)} | "
                         f"{cells} |")
        lines.append("")
    return "\n".join(lines)
