"""Render the leaderboard site from ``reports/`` alone: one function, Jinja2 templates.

Python precomputes everything (summaries, formatted numbers, sort keys, tooltips, record
links and SVG geometry); templates only loop and print, with autoescape on (``True``,
not ``select_autoescape``, which would miss ``.j2`` files). The site is static and
self-contained: no network, no CDN; each record it cites is copied to ``records/``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from . import records as records_io
from .errors import RecordError, XPruneError
from .publish import safe_name
from .summary import Comparison, Row, Setting, Stat, summarize

ASSETS = Path(__file__).resolve().parent.parent / "leaderboard"
MARKER = ".xprune-site"
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2",
           "#ff9da7", "#edc948", "#bab0ac")
W, H, LEFT, RIGHT, TOP, BOTTOM = 660, 340, 58, 170, 14, 46


@dataclass
class RenderSummary:
    """What ``render`` wrote; ``str()`` is one line for the CLI."""

    out: Path
    pages: list[Path] = field(default_factory=list)
    records: int = 0
    skipped_failed: int = 0

    def __str__(self) -> str:
        return (f"rendered {len(self.pages)} page(s) from {self.records} record(s) into {self.out}"
                f" ({self.skipped_failed} failed record(s) skipped); open {self.out / 'index.html'}")


# ---------------------------------------------------------------- numbers and links

def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal."""
    return "—" if x is None else f"{100 * x:.1f}"


def si(x: float) -> str:
    """A count with a k/M/G suffix."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def num(s: Stat | None, fmt: Any = pct, root: str = "../", detail: str = "",
        table: str = "") -> dict[str, Any]:
    """A table cell: text, sort key, tooltip naming seeds and cells, links to the records.

    A number derived from more records than seeds (a curve area) links to ``table``, the
    list of its points, each of which links to its own records.
    """
    if s is None:
        return {"text": "—", "sort": "", "title": "not measured", "links": []}
    text = fmt(s.mean) + (f" [{fmt(s.ci[0])}–{fmt(s.ci[1])}]" if s.ci is not None else "")
    seeds = ", ".join(str(x) for x in s.seeds)
    title = (f"{detail}mean of {s.n} seeds [{seeds}] with its 95% t-interval" if s.n > 1
             else f"{detail}seed {seeds} (one seed: no interval)") + f"; records {', '.join(s.cells)}"
    links = ([{"href": f"{root}records/{h}.json", "label": f"s{seed}"} for seed, h in zip(s.seeds, s.cells)]
             if len(s.seeds) == len(s.cells) else [{"href": table, "label": "points"}])
    return {"text": text, "sort": repr(s.mean), "title": title, "links": links}


def plain(text: str, sort: Any = None, title: str = "") -> dict[str, Any]:
    """A derived or text cell shaped like :func:`num`; a None sort key sorts last."""
    key = "" if sort is None else repr(float(sort)) if isinstance(sort, (int, float)) else str(sort)
    return {"text": text, "sort": key, "title": title, "links": []}


# ---------------------------------------------------------------- SVG geometry

def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.05 or 0.05
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw - 1e-12)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 10) for k in range(first, last + 1)]


def _label(value: float, ticks: list[float]) -> str:
    """A tick label with as many decimals as the tick step needs."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return f"{value:.{max(0, -math.floor(math.log10(step) + 1e-9))}f}"


def axes(xs: list[float], ys: list[float], x_label: str, y_label: str) -> dict[str, Any]:
    """Scales, ticks and frame for a plot of these values."""
    xt, yt = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = LEFT, W - RIGHT, H - BOTTOM, TOP

    def sx(v: float) -> float:
        return round(x0 + (v - xt[0]) / (xt[-1] - xt[0]) * (x1 - x0), 2)

    def sy(v: float) -> float:
        return round(y0 - (v - yt[0]) / (yt[-1] - yt[0]) * (y0 - y1), 2)

    return {"sx": sx, "sy": sy, "width": W, "height": H, "x0": x0, "x1": x1, "y0": y0, "y1": y1,
            "x_ticks": [{"x": sx(t), "label": _label(t, xt)} for t in xt],
            "y_ticks": [{"y": sy(t), "label": _label(t, yt)} for t in yt],
            "x_label": x_label, "y_label": y_label, "x_mid": (x0 + x1) / 2, "y_mid": (y0 + y1) / 2,
            "legend_x": x1 + 14, "refs": [], "front": "", "dense": None}


def _series(ax: dict[str, Any], name: str, color: str, pts: list[tuple[float, float, str, bool]]) -> dict:
    """One method's polyline and markers; pts are (x, y, tooltip, on_front)."""
    coords = [(ax["sx"](x), ax["sy"](y), t, f) for x, y, t, f in pts]
    return {"name": name, "color": color, "path": " ".join(f"{x},{y}" for x, y, _, _ in coords),
            "points": [{"cx": x, "cy": y, "title": t, "front": f} for x, y, t, f in coords]}


def _legend(ax: dict[str, Any], entries: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Legend entries (label, color, kind) stacked right of the plot area."""
    return [{"label": label, "color": color, "kind": kind, "x": ax["legend_x"], "y": TOP + 10 + 18 * i}
            for i, (label, color, kind) in enumerate(entries)]


def acc_plot(setting: Setting, names: dict, colors: dict) -> dict[str, Any]:
    """Accuracy (%) vs sparsity, one line per method, dense model as a dashed reference."""
    ys = [100 * p.acc.mean for r in setting.rows for p in r.points] + [100 * setting.dense.mean]
    ax = axes(list(setting.sparsities), ys, "sparsity (fraction of units removed)", "accuracy (%)")
    series = [_series(ax, names[r.method, r.version], colors[r.method, r.version],
                      [(p.sparsity, 100 * p.acc.mean, _tip(names[r.method, r.version], p.sparsity,
                                                            p.acc, p.macs.mean), False)
                       for p in r.points]) for r in setting.rows]
    dense_y = ax["sy"](100 * setting.dense.mean)
    ax.update(series=series, refs=[{"y": dense_y, "title": f"dense model: {pct(setting.dense.mean)}%"}],
              legend=_legend(ax, [(s["name"], s["color"], "line") for s in series]
                             + [(f"dense {pct(setting.dense.mean)}%", "#555", "ref")]))
    return ax


def macs_plot(setting: Setting, names: dict, colors: dict) -> dict[str, Any]:
    """Accuracy (%) vs MACs with the Pareto front drawn through its points."""
    unit, div = ("MMACs", 1e6) if setting.macs_dense >= 1e6 else ("kMACs", 1e3)
    pts = [(p.macs.mean / div, 100 * p.acc.mean, r, p) for r in setting.rows for p in r.points]
    ax = axes([x for x, *_ in pts] + [setting.macs_dense / div],
              [y for _, y, *_ in pts] + [100 * setting.dense.mean], f"MACs ({unit})", "accuracy (%)")
    series = [_series(ax, names[r.method, r.version], colors[r.method, r.version],
                      [(x, y, _tip(names[r.method, r.version], p.sparsity, p.acc, p.macs.mean),
                        p.sparsity in r.pareto) for x, y, rr, p in pts if rr is r]) for r in setting.rows]
    front = sorted((x, y) for x, y, r, p in pts if p.sparsity in r.pareto)
    ax.update(series=series, front=" ".join(f"{ax['sx'](x)},{ax['sy'](y)}" for x, y in front),
              dense={"cx": ax["sx"](setting.macs_dense / div), "cy": ax["sy"](100 * setting.dense.mean),
                     "title": f"dense model: {si(setting.macs_dense)} MACs, {pct(setting.dense.mean)}%"},
              legend=_legend(ax, [(s["name"], s["color"], "dot") for s in series]
                             + [("Pareto front", "#222", "front"), ("dense model", "#555", "dense")]))
    return ax


def _tip(name: str, sparsity: float, acc: Stat, macs: float) -> str:
    """A plot point's tooltip."""
    spread = f" [95% CI {pct(acc.ci[0])}–{pct(acc.ci[1])}]" if acc.ci is not None else ""
    return (f"{name} at sparsity {sparsity:g}: accuracy {pct(acc.mean)}{spread}% "
            f"({acc.n} seed(s)), {si(macs)} MACs")


# ---------------------------------------------------------------- page contexts

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
            "lat64": num(p.latency_b64, _g3, root), "score": num(p.score_seconds, _g3, root),
            "front": plain("yes" if p.sparsity in row.pareto else "", 1 if p.sparsity in row.pareto else None)}


def setting_context(setting: Setting, names: dict, colors: dict) -> dict[str, Any]:
    """Everything the setting page prints."""
    rows = [_row_context(r, setting, names, "../", "#points") for r in setting.rows]
    return {"title": setting_title(setting), "root": "../", "key": setting.key._asdict(),
            "sparsities": [f"{s:g}" for s in setting.sparsities], "rows": rows,
            "last_sparsity": f"{setting.sparsities[-1]:g}",
            "points": [p for r in rows for p in r["points"]],
            "dense": num(setting.dense, root="../"), "macs_dense": si(setting.macs_dense),
            "acc_plot": acc_plot(setting, names, colors), "macs_plot": macs_plot(setting, names, colors)}


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


def cd_diagram(c: Comparison, path: Path) -> bool:
    """A critical-difference diagram (scikit-posthocs, matplotlib SVG); False if not applicable."""
    sig = c.significance
    if sig.p_value is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import scikit_posthocs as sp

    names = list(sig.methods)
    matrix = pd.DataFrame([[1.0 if a == b else sig.pairwise_p[a][b] for b in names] for a in names],
                          index=names, columns=names)
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(names) + 1.2))
    sp.critical_difference_diagram(pd.Series(sig.mean_ranks), matrix, ax=ax, alpha=sig.alpha)
    ax.set_title(f"{c.granularity}: mean rank over {sig.blocks} settings "
                 f"(bars join methods the Nemenyi test does not separate)", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return True


def method_context(method: str, metas: list[dict], settings: list[Setting], names: dict) -> dict:
    """A method's metadata (per version) and its rows in every setting."""
    results = [{"setting": setting_title(s), "href": f"../settings/{s.key.slug}.html",
                **_row_context(r, s, names, "../", f"../settings/{s.key.slug}.html#points")}
               for s in settings for r in s.rows if r.method == method]
    versions = [{**m, "reference_url": m["reference"] if re.match(r"^https?://", m["reference"]) else None,
                 "soundness": m.get("soundness", "not checked (record from before the soundness stage)")}
                for m in metas]
    return {"title": f"method {method}", "root": "../", "method": method, "versions": versions,
            "results": results}


# ---------------------------------------------------------------- the one render function

def _load(reports: Path) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict]]:
    """Every record (validated, names checked, hashes unique) and method metadata per version."""
    if not reports.is_dir():
        raise RecordError(f"reports directory {reports} does not exist (run `xprune publish` first)")
    found: dict[str, dict[str, Any]] = {}
    for record in records_io.iter_records(reports):
        for part in ("dataset", "backbone", "method"):
            safe_name(record["cell"][part], part)
        if found.setdefault(record["cell_hash"], record) != record:
            raise RecordError(f"{reports}: two different records for cell {record['cell_hash']}")
    recs = [found[h] for h in sorted(found)]
    metas = {}
    for r in (r for r in recs if r["status"] == "ok"):
        metas.setdefault((r["cell"]["method"], r["cell"]["method_version"]), r["method"])
    return recs, metas


def _prepare(out: Path) -> None:
    """Empty a previous site (identified by its marker); refuse any other non-empty directory."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise XPruneError(f"{out} is not empty and not a rendered site; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("rendered by xprune leaderboard; this directory is replaced on render\n")


def _write(path: Path, text: str, summary: RenderSummary) -> None:
    """Write one page and count it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    summary.pages.append(path)


def render(reports: Path | str = "reports", out: Path | str = "leaderboard/site",
           assets: Path | str = ASSETS) -> RenderSummary:
    """Render index, one page per setting and per method, and leaderboard.json into ``out``."""
    reports, out, assets = Path(reports), Path(out), Path(assets)
    if not (assets / "templates").is_dir():
        raise XPruneError(f"leaderboard templates not found in {assets / 'templates'}")
    recs, metas = _load(reports)
    multi = {m for m, v in metas if sum(1 for mm, _ in metas if mm == m) > 1}
    names = {(m, v): f"{m} v{v}" if m in multi else m for m, v in metas}
    settings, comparisons, failed = summarize(recs, names)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(assets / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    colors = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(sorted(metas))}
    summary = RenderSummary(out=out, records=len(recs) - failed, skipped_failed=failed)
    _prepare(out)
    shutil.copytree(assets / "static", out / "static")
    figures = {c.granularity: f"figures/cd-{c.granularity}.svg" for c in comparisons
               if cd_diagram(c, out / "figures" / f"cd-{c.granularity}.svg")}
    _write(out / "index.html", env.get_template("index.j2").render(
        **index_context(settings, comparisons, names, figures)), summary)
    for s in settings:
        _write(out / "settings" / f"{s.key.slug}.html",
               env.get_template("setting.j2").render(**setting_context(s, names, colors)), summary)
    for method in sorted({m for m, _ in metas}):
        versions = [metas[k] for k in sorted(metas) if k[0] == method]
        _write(out / "methods" / f"{method}.html", env.get_template("method.j2").render(
            **method_context(method, versions, settings, names)), summary)
    # compact: a generated file for machines (indented it triples in size)
    _write(out / "leaderboard.json", json.dumps(machine_view(settings, comparisons, metas, failed),
                                                sort_keys=True, separators=(",", ":")) + "\n",
           summary)
    for r in recs:
        if r["status"] == "ok":
            (out / "records").mkdir(exist_ok=True)
            (out / "records" / f"{r['cell_hash']}.json").write_text(
                json.dumps(r, indent=2, sort_keys=True) + "\n")
    return summary


def machine_view(settings: list[Setting], comparisons: list[Comparison], metas: dict,
                 failed: int) -> dict:
    """leaderboard.json: the same numbers as the pages, raw fractions, with their cell hashes."""
    return {
        "accuracy": "metrics.recovered.acc (fraction); area = trapezoid / sparsity span; "
                    "ci = 95% t-interval over seeds",
        "skipped_failed": failed,
        "methods": [{"name": m, "version": v, **meta} for (m, v), meta in sorted(metas.items())],
        "comparisons": [{"granularity": c.granularity, "significance": asdict(c.significance),
                         "blocks": [k.slug for k in c.blocks],
                         "excluded": [k.slug for k in c.excluded], "left_out": list(c.left_out),
                         "per_dataset": c.per_dataset} for c in comparisons],
        "settings": [{"slug": s.key.slug, "key": s.key._asdict(), "synthetic": s.synthetic,
                      "sparsities": list(s.sparsities), "dense": asdict(s.dense),
                      "macs_dense": s.macs_dense, "best": [[r.method, r.version] for r in s.best],
                      "rows": [asdict(r) for r in s.rows]} for s in settings],
    }
