"""Page contexts of the leaderboard: everything each template prints, as plain dicts
(numbers formatted, sort keys, tooltips, record links and plot geometry precomputed)."""

from __future__ import annotations

import re
from typing import Any

from .numbers import num, pct, plain, si
from .plots import acc_plot, macs_plot, preservation_plot
from .summary import Comparison, Row, Setting


def setting_title(setting: Setting) -> str:
    """A human-readable name for a setting."""
    k = setting.key
    synthetic = " (synthetic data)" if setting.synthetic else ""
    return (f"{k.dataset}{synthetic} {k.size}px · {k.backbone} · {k.granularity} · {k.scope} "
            f"scope · recovery {k.recovery}")


def _row_context(row: Row, setting: Setting, names: dict, root: str, table: str) -> dict[str, Any]:
    """One method row of a results table, every number formatted and linked."""
    by_s = {p.sparsity: p for p in row.points}
    last = row.points[-1]
    at = f"at sparsity {last.sparsity:g}: "
    within = row.within_one_point
    return {
        "name": names[row.method, row.version], "href": f"{root}methods/{row.method}.html",
        "version": row.version,
        "rank": plain("—" if row.rank is None else f"{row.rank:g}", row.rank,
                      "unranked: not measured at every sparsity of this setting"
                      if row.rank is None else "rank by curve area among complete rows"),
        "area": num(row.area, root=root, detail="area under the accuracy-vs-sparsity curve; ",
                    table=table),
        "preserved": num(row.preserved, _g2, root, "explanation preserved: Spearman correlation "
                         "of the dense and pruned models' reference-LRP maps on 64 test images, "
                         "mean over sparsities; "),
        "collapsed": plain("—" if row.collapsed is None else str(row.collapsed), row.collapsed,
                           "points (sparsity x seed) inside the curve area whose balanced "
                           "accuracy is within 0.02 of chance: the model predicts ~one class"),
        "acc": [num(by_s[s].acc if s in by_s else None, root=root) for s in setting.sparsities],
        "auc": [num(by_s[s].auc if s in by_s else None, root=root) for s in setting.sparsities],
        "within": plain("—" if within is None else f"{within:g}", within,
                        f"largest sparsity whose mean accuracy is within 1 point of the dense "
                        f"{pct(row.dense.mean)}%"),
        "macs": num(last.macs, si, root, at), "speedup": _speedup(last, root, at),
        "score": num(last.score_seconds, _g3, root),
        "points": [_point_context(row, p, names, root) for p in row.points],
    }


def _g3(x: float) -> str:
    """Three significant digits."""
    return f"{x:.3g}"


def _g2(x: float) -> str:
    """Two decimals (correlations)."""
    return f"{x:.2f}"


def _speedup(p: Any, root: str, detail: str = "") -> dict[str, Any]:
    """Measured batch-64 speed-up, marked when its interval contains 1 in most cells."""
    cell = num(p.speedup_b64, _g3, root, detail + "measured CPU latency ratio dense/pruned, batch 64; ")
    if p.within_noise is not None and p.within_noise >= 0.5:
        cell = {**cell, "text": cell["text"] + " (noise)",
                "title": cell["title"] + "; within noise: the interval of the speed-up contains 1"}
    return cell


def _point_context(row: Row, p: Any, names: dict, root: str) -> dict[str, Any]:
    """One measured point (method, sparsity) of the details table."""
    collapsed = "—" if p.collapsed is None else f"{p.collapsed}/{p.acc.n}"
    return {"name": names[row.method, row.version], "sparsity": plain(f"{p.sparsity:g}", p.sparsity),
            "acc": num(p.acc, root=root), "auc": num(p.auc, root=root),
            "bal": num(p.bal_acc, root=root), "collapsed": plain(collapsed, p.collapsed),
            "macs": num(p.macs, si, root), "params": num(p.params, si, root),
            "reduction": num(p.mac_reduction, _g3, root, "dense / pruned MACs (theoretical); "),
            "speedup": _speedup(p, root), "lat1": num(p.latency_b1, _g3, root),
            "preserved": num(p.preserved, _g2, root), "iou": num(p.iou, _g2, root),
            "lat64": num(p.latency_b64, _g3, root), "score": num(p.score_seconds, _g3, root),
            "front": plain("yes" if p.sparsity in row.pareto else "", 1 if p.sparsity in row.pareto else None)}


def setting_context(setting: Setting, names: dict, colors: dict,
                    not_applicable: list[str] = ()) -> dict[str, Any]:
    """Everything the setting page prints (``not_applicable``: methods that declare they
    cannot score this backbone)."""
    rows = [_row_context(r, setting, names, "../", "#points") for r in setting.rows]
    return {"title": setting_title(setting), "root": "../", "key": setting.key._asdict(),
            "not_applicable": ", ".join(not_applicable),
            "sparsities": [f"{s:g}" for s in setting.sparsities], "rows": rows,
            "last_sparsity": f"{setting.sparsities[-1]:g}",
            "points": [p for r in rows for p in r["points"]],
            "dense": num(setting.dense, root="../"), "macs_dense": si(setting.macs_dense),
            "acc_plot": acc_plot(setting, names, colors), "macs_plot": macs_plot(setting, names, colors),
            "preservation_plot": preservation_plot(setting, names, colors)}


def comparison_context(c: Comparison, names: dict, cd_figure: str | None) -> dict[str, Any]:
    """One granularity's Friedman / Nemenyi comparison, as the index prints it."""
    sig = c.significance
    datasets = sorted({d for per in c.per_dataset.values() for d in per})
    test = ("Friedman test not applicable (fewer than 3 methods or 2 settings)"
            if sig.p_value is None else
            f"Friedman χ² = {sig.statistic:.2f}, p = {sig.p_value:.2g} over {sig.blocks} settings; "
            f"Nemenyi critical difference of mean ranks {sig.critical_difference:.2f} (α = {sig.alpha})")
    rows = []
    for name in sig.methods:
        beats = [m for m in sig.methods if sig.mean_ranks[m] > sig.mean_ranks[name] and sig.differs(name, m)]
        rows.append({"name": name, "href": f"methods/{name.split(' v')[0]}.html",
                     "mean": plain(f"{sig.mean_ranks[name]:.2f}", sig.mean_ranks[name]),
                     "per": [plain(f"{c.per_dataset[name][d]:.2f}", c.per_dataset[name][d])
                             if d in c.per_dataset.get(name, {}) else plain("—") for d in datasets],
                     "beats": ", ".join(beats) or "—"})
    return {"granularity": c.granularity, "test": test, "significant": sig.significant,
            "datasets": datasets, "rows": rows, "figure": cd_figure,
            "excluded": len(c.excluded), "left_out": ", ".join(c.left_out)}


def index_context(settings: list[Setting], comparisons: list[Comparison], names: dict,
                  figures: dict[str, str]) -> dict[str, Any]:
    """The settings grid (best method per setting) and the per-granularity comparisons."""
    columns = sorted({(s.key.granularity, s.key.scope, s.key.recovery) for s in settings})
    lines = sorted({(s.key.dataset, s.key.size, s.key.backbone) for s in settings})
    grid = [{"label": f"{d} {size}px · {b}", "cells": [[
        {"href": f"settings/{s.key.slug}.html", "best": " / ".join(names[r.method, r.version] for r in s.best)
         or "—", "area": num(s.best[0].area if s.best else None, root="",
                                     table=f"settings/{s.key.slug}.html#points"),
         "note": f"{s.best[0].area.n} seed(s)" if s.best else ""}
        for s in settings if (s.key.dataset, s.key.size, s.key.backbone) == (d, size, b)
        and (s.key.granularity, s.key.scope, s.key.recovery) == col] for col in columns]}
        for d, size, b in lines]
    return {"title": "XPrune Bench leaderboard", "root": "", "columns": [" · ".join(c) for c in columns],
            "grid": grid, "comparisons": [comparison_context(c, names, figures.get(c.granularity))
                                          for c in comparisons],
            "settings": [{"href": f"settings/{s.key.slug}.html", "title": setting_title(s)} for s in settings]}



def method_context(method: str, metas: list[dict], settings: list[Setting], names: dict,
                   heatmaps: tuple[str, str] | None = None) -> dict:
    """A method's metadata (per version) and its rows in every setting."""
    results = [{"setting": setting_title(s), "href": f"../settings/{s.key.slug}.html",
                **_row_context(r, s, names, "../", f"../settings/{s.key.slug}.html#points")}
               for s in settings for r in s.rows if r.method == method]
    versions = [{**m, "reference_url": m["reference"] if re.match(r"^https?://", m["reference"]) else None,
                 "applies_to": ("every backbone" if m.get("architectures", "any") == "any" else
                                f"{m['architectures'].replace(',', ', ')} backbones only (not "
                                "applicable to the others: such cells are never run)"),
                 "soundness": m.get("soundness", "not checked (record from before the soundness stage)")}
                for m in metas]
    return {"title": f"method {method}", "root": "../", "method": method, "versions": versions,
            "results": results,
            "heatmaps": None if heatmaps is None else {"src": heatmaps[0], "caption": heatmaps[1]}}


