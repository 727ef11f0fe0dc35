"""Figures of the leaderboard: the plots of a setting page (geometry from :mod:`bench.site.svg`,
printed by the templates), the critical-difference diagram and the heatmap pictures.

Every plot of a setting draws one series per method in the method's colour and marker, its
95% intervals over seeds (a shaded band along a sparsity axis, whiskers elsewhere), and marks
collapsed points hollow; each point links its row of the page's table of points (its records).
Plots whose metric no record measured are None (not drawn).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.results.summary import METRIC_NAMES, Comparison, Point, Row, Setting, Stat
from bench.site.numbers import anchor, pct, si
from bench.site.svg import MATPLOTLIB, Mark, Style, axes, series

Value = Callable[[Point], Stat | float | None]


def _mean(v: Stat | float | None) -> float | None:
    return v.mean if isinstance(v, Stat) else v


def _ci(v: Stat | float | None, scale: float) -> tuple[float, float] | None:
    if isinstance(v, Stat) and v.ci is not None:
        return (scale * v.ci[0], scale * v.ci[1])
    return None


def _interval(v: Stat, fmt: Callable[[float], str]) -> str:
    """``mean [low–high]`` as the tooltips print it."""
    ci = f" [95% CI {fmt(v.ci[0])}–{fmt(v.ci[1])}]" if v.ci is not None else ""
    return f"{fmt(v.mean)}{ci}"


def _tip(name: str, p: Point, y_name: str, y: Stat, extra: str = "") -> str:
    """A point's tooltip: method, sparsity, the plotted value with its 95% interval, seeds."""
    collapsed = f"; collapsed in {p.collapsed} of {p.acc.n}" if p.collapsed else ""
    ci = f" [{pct(y.ci[0])}–{pct(y.ci[1])}]" if y.ci is not None else ""
    return f"{name}, sparsity {p.sparsity:g}: {y_name} {pct(y.mean)}%{ci}, {y.n} seeds{extra}{collapsed}"


def _plot(setting: Setting, names: dict, styles: dict[str, Style], x: Value, y: Value,
          labels: tuple[str, str], x_scale: float = 1.0, band: bool = False,
          extra: Callable[[Point], str] = lambda p: "", y_name: str = "accuracy",
          x_extra: list[float] = (), y_extra: list[float] = (),
          front: bool = False, highlight: frozenset[str] = frozenset(), wide: bool = False,
          points: str = "") -> dict[str, Any] | None:
    """One plot: every method's points where both values exist (the ``highlight``ed methods
    in colour, the others muted); None when there are none. Points link ``points`` (the page
    with the table of points) at their row."""
    rows: list[tuple[Row, list[Point]]] = [
        (r, [p for p in r.points if _mean(x(p)) is not None and _mean(y(p)) is not None])
        for r in setting.rows]
    rows = [(r, ps) for r, ps in rows if ps]
    if not rows:
        return None
    xs = [x_scale * _mean(x(p)) for _, ps in rows for p in ps] + list(x_extra)
    ys = [100 * _mean(y(p)) for _, ps in rows for p in ps] + list(y_extra)
    ys += [min(max(v, 0.0), 100.0) for _, ps in rows for p in ps
           for v in (_ci(y(p), 100) or ())]  # intervals in view, but no accuracy above 100%
    ax = axes(xs, ys, *labels, wide=wide)
    for r, ps in sorted(rows, key=lambda rp: names[rp[0].method, rp[0].version] in highlight):
        name = names[r.method, r.version]
        marks = [Mark(x_scale * _mean(x(p)), 100 * _mean(y(p)), _tip(name, p, y_name, y(p), extra(p)),
                      _ci(y(p), 100), None if band else _ci(x(p), x_scale),
                      bool(p.collapsed) or setting.at_floor(_mean(y(p))),
                      front and p.sparsity in r.pareto, f"{points}#pt-{anchor(name)}-{p.sparsity:g}")
                 for p in ps]
        ax["series"].append(series(ax, name, styles[name], marks, band, name in highlight))
    return ax


def _dense_ref(ax: dict[str, Any], value: Stat | None, what: str) -> None:
    """The dense model as a dashed horizontal line."""
    if ax is not None and value is not None:
        ax["refs"].append({"y": ax["sy"](100 * value.mean), "kind": "dense", "stroke": "#555",
                           "dash": "6 4", "title": f"dense model: {what} {_interval(value, pct)}%",
                           "label": "dense" if ax["wide"] else "",
                           "label_y": ax["sy"](100 * value.mean) + 4})


def floors(s: Setting) -> list[tuple[str, float]]:
    """The constant-model references of the setting's metric plot: chance (1/K) and the
    majority-class share (for balanced accuracy and ACC), 0.5 for AUC; those not known left out."""
    if s.metric == "auc":
        return [("chance", 0.5)]
    out = [("chance", s.chance), ("majority", s.majority)]
    return [(k, v) for k, v in out if v is not None]


def _floor_refs(ax: dict[str, Any] | None, s: Setting) -> None:
    """Chance and majority-class lines (dotted): a point on or under them is collapsed."""
    if ax is None:
        return
    for kind, value in floors(s):
        what = {"chance": "chance (1/K), a constant model's balanced accuracy"
                if s.metric != "auc" else "chance, a constant model's AUC",
                "majority": "majority-class share of the test set, a constant model's ACC"}[kind]
        ax["refs"].append({"y": ax["sy"](100 * value), "kind": kind, "stroke": "#999",
                           "dash": "2 3", "title": f"{what}: {pct(value)}%",
                           "label": kind if ax["wide"] else "", "label_y": ax["sy"](100 * value) + 4})
    _spread_labels(ax)


def _spread_labels(ax: dict[str, Any]) -> None:
    """Reference-line labels at least 13 units apart (chance and majority can coincide)."""
    labelled = sorted((r for r in ax["refs"] if r["label"]), key=lambda r: r["label_y"])
    for a, b in zip(labelled, labelled[1:]):
        b["label_y"] = max(b["label_y"], a["label_y"] + 13)


def _dense_point(ax: dict[str, Any] | None, x: float, setting: Setting, what: str) -> None:
    """The dense model as a grey square at (x, its accuracy)."""
    if ax is not None and setting.dense is not None:
        cx, cy = ax["sx"](x), ax["sy"](100 * setting.dense.mean)
        ax["dense"] = {"cx": cx, "cy": cy, "x": cx - 6, "y": cy - 6,  # a 12-unit square
                       "title": f"dense model: {what}, {METRIC_NAMES[setting.metric]} "
                               f"{_interval(setting.dense, pct)}%"}


def highlighted(setting: Setting, names: dict) -> list[str]:
    """The methods a setting's plots show in colour at first: the first by curve area, random
    and magnitude (the floor and the cheap baseline); the reader highlights others from the
    legend."""
    lead = [names[r.method, r.version] for r in setting.best[:1]]
    refs = [names[r.method, r.version] for r in setting.rows if r.method in ("random", "magnitude")]
    return list(dict.fromkeys(lead + refs))


def setting_plots(setting: Setting, names: dict, styles: dict[str, Style],
                  points: str = "") -> list[dict[str, Any]]:
    """The plots of a setting page under its metric, each with its id, label and caption;
    missing ones left out. The first (the metric vs sparsity) is the large one. A point at or
    below a constant model (within the collapse margin) is drawn hollow, as collapsed; points
    link their row of the table of points on ``points`` (this page when "")."""
    s = setting
    m, name = s.metric, METRIC_NAMES[s.metric]
    hl = frozenset(highlighted(s, names))
    def value(p):
        return p.value(m)
    label = f"{name} (%)"
    dense_y = [100 * s.dense.mean] if s.dense else []
    floor_y = [100 * v for _, v in floors(s)]
    main = _plot(s, names, styles, lambda p: p.sparsity, value,
                 ("sparsity (fraction of units removed)", label), band=True, y_name=name,
                 y_extra=dense_y + floor_y, highlight=hl, wide=True, points=points)
    _dense_ref(main, s.dense, name)
    _floor_refs(main, s)
    unit, div = ("MMACs", 1e6) if s.macs_dense >= 1e6 else ("kMACs", 1e3)
    macs = _plot(s, names, styles, lambda p: p.macs, value, (f"MACs ({unit})", label),
                 x_scale=1 / div, extra=lambda p: f", {si(p.macs.mean)} MACs", y_name=name,
                 x_extra=[s.macs_dense / div], y_extra=dense_y + floor_y, front=True,
                 highlight=hl, points=points)
    _dense_point(macs, s.macs_dense / div, s, f"{si(s.macs_dense)} MACs")
    if macs is not None:
        front = sorted((p.macs.mean, p.value(m).mean) for r in s.rows for p in r.points
                       if p.sparsity in r.pareto and p.value(m) is not None)
        macs["front"] = " ".join(f"{macs['sx'](x / div):g},{macs['sy'](100 * a):g}" for x, a in front)
    dense_ms = s.dense_latency_b64
    latency = _plot(s, names, styles, lambda p: p.latency_b64, value,
                    ("measured latency, batch 64 (ms)", label), y_name=name,
                    extra=lambda p: f", {p.latency_b64.mean:.3g} ms at batch 64",
                    x_extra=[dense_ms] if dense_ms else [], y_extra=dense_y + floor_y,
                    highlight=hl, points=points)
    if dense_ms is not None:
        _dense_point(latency, dense_ms, s, f"{dense_ms:.3g} ms at batch 64")
    preserved = _plot(s, names, styles, lambda p: p.preserved, value,
                      ("explanation preserved (Spearman of LRP maps)", label), y_name=name,
                      extra=lambda p: f", map Spearman {p.preserved.mean:.2f}",
                      x_extra=[1.0], y_extra=dense_y + floor_y, highlight=hl, points=points)
    _dense_point(preserved, 1.0, s, "its own maps (Spearman 1)")
    for ax in (macs, latency, preserved):
        _floor_refs(ax, s)
    cap = name[0].upper() + name[1:]
    figures = [
        ("plot-metric", main, f"{cap} vs sparsity",
         (f"{cap} after recovery vs sparsity, the highlighted methods in colour with their 95% "
          "interval over seeds (shaded), the others grey; dashed: the dense model; dotted: chance "
          "(1/K) and the majority-class share (hollow: collapsed).")),
        ("plot-latency", latency, f"{cap} vs measured latency",
         (f"{cap} vs measured CPU latency at batch 64 (one thread); bars: 95% intervals over "
          "seeds; square: the dense model. Weight pruning masks weights: its latency barely moves.")),
        ("plot-preserved", preserved, f"{cap} vs explanation preservation",
         (f"{cap} vs how much the pruned model's reference-LRP maps rank pixels like the dense "
          "model's (Spearman); further right explains itself more like the dense model.")),
        ("plot-macs", macs, f"{cap} vs MACs",
         (f"{cap} vs MACs (theoretical cost); ringed points and the dotted line form the Pareto "
          f"front (fewer MACs and higher {name} than any other point); square: the dense model.")),
    ]
    return [{"id": i, "plot": p, "label": lab, "caption": caption}
            for i, p, lab, caption in figures if p is not None]


def cd_diagram(c: Comparison, path: Path, styles: dict[str, Style] | None = None) -> bool:
    """A critical-difference diagram (scikit-posthocs, matplotlib SVG), each method's rank
    marked with its site marker and labelled in its site colour; False if not applicable (no
    Friedman test)."""
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
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(names) + 1.1))
    styles = styles or {}
    colors = {n: styles[n].color if n in styles else "#333333" for n in names}
    sp.critical_difference_diagram(
        pd.Series(sig.mean_ranks), matrix, ax=ax, alpha=sig.alpha, label_props={"fontsize": 11},
        marker_props={"s": 0}, color_palette=colors)  # markers drawn below, one shape each
    for n in names:
        ax.scatter(sig.mean_ranks[n], 0, s=70, zorder=4, color=colors[n], edgecolors="white",
                   linewidths=0.8, marker=MATPLOTLIB[styles[n].marker] if n in styles else "o")
    ax.set_title(f"{c.granularity} pruning, {c.architecture}, {METRIC_NAMES[c.metric]}: mean rank "
                 f"over {sig.blocks} settings\n"
                 f"(bars join methods the Nemenyi test does not separate)", fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return True


def method_heatmaps(records: list[dict], method: str, folder: Path) -> list[tuple[str, str]]:
    """PNGs of dense vs pruned reference-explainer maps at the showcase sparsities, one per
    dataset (its setting of ``method`` with the most kept sparsities, ties in sorted order),
    written to ``folder``; returns (file name, caption) per picture, in dataset order."""
    kept: dict[tuple, dict[float, dict]] = {}
    for r in records:
        block = (r["metrics"] or {}).get("transparency") or {}
        if r["cell"]["method"] == method and "maps" in block:
            c = r["cell"]
            key = (c["dataset"], c["backbone"], c["granularity"], c["recovery"], c["method_version"])
            kept.setdefault(key, {})[c["sparsity"]] = block
    if not kept:
        return []
    from bench.compute.transparency import (  # imports torch: only when maps exist
        heatmap_png,
        stored_maps,
    )

    pictures = []
    for dataset in sorted({k[0] for k in kept}):
        key = min((k for k in kept if k[0] == dataset), key=lambda k: (-len(kept[k]), k))
        blocks = kept[key]
        images, dense, _ = stored_maps(next(iter(blocks.values())))
        pruned = {s: stored_maps(b)[2] for s, b in sorted(blocks.items())}
        name = f"heatmaps-{method}-{dataset}.png"
        folder.mkdir(parents=True, exist_ok=True)
        heatmap_png(images, dense, pruned, folder / name)
        _, backbone, granularity, recovery, _ = key
        explainer = next(iter(blocks.values()))["maps"].get("explainer", "reference LRP")
        pictures.append((name, (
            f"{dataset} · {backbone} · {granularity} pruning · {recovery}, seed 0: test images, "
            f"the dense model's {explainer} maps, and the pruned models' maps at sparsity "
            f"{', '.join(f'{s:g}' for s in sorted(blocks))} (red: evidence for the true class, "
            "blue: against; each map scaled to its own largest |relevance|)")))
    return pictures
