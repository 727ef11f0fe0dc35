"""What a finished ``xprune run`` reports to its MLflow parent run: counts, wall time, each
method's mean curve area and mean rank per granularity, the per-setting table (``summary.md``)
and every setting's curves (for the setting and curve runs), all computed by
``bench.results.summary`` from the run's records under the primary metric (balanced
accuracy)."""

from __future__ import annotations

import datetime
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping

from bench.results import records
from bench.results.summary import METRIC_NAMES, METRICS, PRIMARY, Setting, summarize


def summarize_run(records_dir: Path, total: int, counts: Mapping[str, int], wall_seconds: float,
                  ) -> tuple[dict[str, float], str, list[dict[str, Any]]]:
    """Summary metrics, a Markdown table of every setting in ``records_dir`` and each
    setting's curves (:func:`curves`)."""
    recs = list(records.iter_records(records_dir)) if Path(records_dir).is_dir() else []
    settings, comparisons, failed = summarize(recs, metric=PRIMARY)
    metrics: dict[str, float] = {
        "cells_total": total, "cells_ok": counts.get("ok", 0),
        "cells_failed": counts.get("failed", 0), "records_ok": len(recs) - failed,
        "records_failed": failed, "wall_seconds": round(wall_seconds, 3)}
    areas: dict[tuple[str, str], list[float]] = defaultdict(list)
    for setting in settings:  # channel and weight pruning are never averaged together
        for row in setting.rows:
            areas[(setting.key.granularity, row.method)].append(row.area.mean)
    metrics |= {f"area.{gran}.{method}": statistics.fmean(v)
                for (gran, method), v in sorted(areas.items())}
    metrics |= {f"mean_rank.{c.slug}.{method}": rank for c in comparisons  # e.g. channel-cnn
                for method, rank in c.significance.mean_ranks.items()}
    return metrics, _markdown(settings, metrics), curves(settings, recs)


def record_millis(record: dict[str, Any]) -> tuple[int, int] | None:
    """A record's measured (start, end) in epoch milliseconds: it was written (``created``)
    when its cell ended, ``seconds`` after the cell started; None when it has no time."""
    prov = record.get("provenance") or {}
    try:
        end = datetime.datetime.fromisoformat(prov["created"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None
    return int((end - float(prov.get("seconds") or 0.0)) * 1000), int(end * 1000)


def curves(settings: list[Setting], recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setting: its key, dense references and, per method, the mean over seeds of every
    metric at each measured sparsity with the time the last of its cells ended (plain data:
    the tracker logs each as a step metric, step = round(sparsity x 100))."""
    times = {r["cell_hash"]: t for r in recs if (t := record_millis(r)) is not None}
    out = []
    for setting in settings:
        methods, spans = [], []
        for row in setting.rows:
            points = []
            for p in row.points:
                ends = [times[h][1] for h in p.acc.cells if h in times]
                spans += [times[h] for h in p.acc.cells if h in times]
                points.append({"sparsity": p.sparsity, "step": round(p.sparsity * 100),
                               "seeds": p.acc.n, "end_ms": max(ends) if ends else None,
                               **{m: (v.mean if (v := p.value(m)) is not None else None)
                                  for m in METRICS}})
            methods.append({
                "method": row.method, "version": row.version, "rank": row.rank,
                "complete": row.complete,
                "area": {m: (a.mean if (a := row.areas.get(m)) is not None else None)
                         for m in METRICS} | {PRIMARY: row.area.mean},
                "points": points})
        out.append({
            "key": setting.key._asdict(), "slug": setting.key.slug,
            "synthetic": setting.synthetic, "sparsities": list(setting.sparsities),
            "dense": {m: (d.mean if (d := setting.denses.get(m)) is not None else None)
                      for m in METRICS},
            "chance": setting.chance, "majority": setting.majority,
            "start_ms": min((s for s, _ in spans), default=None),
            "end_ms": max((e for _, e in spans), default=None),
            "methods": methods})
    return out


def _fmt(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _markdown(settings: list, metrics: dict[str, float]) -> str:
    lines = ["# Run summary", "",
             f"{int(metrics['records_ok'])} ok and {int(metrics['records_failed'])} failed "
             f"record(s) of {int(metrics['cells_total'])} cells; this run: "
             f"{int(metrics['cells_ok'])} ok, {int(metrics['cells_failed'])} failed in "
             f"{metrics['wall_seconds']:.0f} s.", "",
             f"{METRIC_NAMES[PRIMARY].capitalize()} after recovery; area = mean "
             f"{METRIC_NAMES[PRIMARY]} over the sparsity range.", ""]
    for setting in settings:
        k = setting.key
        title = (f"## {k.dataset} / {k.backbone} / {k.granularity} / {k.scope} / "
                 f"{k.recovery} (dense {_fmt(setting.dense.mean)})")
        head = "| rank | method | area | " + " | ".join(f"s={s:g}" for s in setting.sparsities)
        lines += [title + (" — synthetic data" if setting.synthetic else ""), "",
                  head + " |", "|" + "---|" * (3 + len(setting.sparsities))]
        for row in setting.rows:
            accs = {p.sparsity: v.mean for p in row.points if (v := p.value(PRIMARY))}
            cells = " | ".join(_fmt(accs.get(s)) for s in setting.sparsities)
            rank = "–" if row.rank is None else f"{row.rank:g}"
            lines.append(f"| {rank} | {row.method} v{row.version} | {_fmt(row.area.mean)} | "
                         f"{cells} |")
        lines.append("")
    return "\n".join(lines)
