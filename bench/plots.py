"""Figures of the leaderboard: SVG geometry for the inline plots (computed here, so the
templates only print coordinates), the critical-difference diagram and heatmap pictures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .numbers import pct, si
from .summary import Comparison, Setting, Stat

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2",
           "#ff9da7", "#edc948", "#bab0ac")
W, H, LEFT, RIGHT, TOP, BOTTOM = 660, 340, 58, 170, 14, 46


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




def preservation_plot(setting: Setting, names: dict, colors: dict) -> dict[str, Any] | None:
    """Accuracy (%) vs explanation preservation (Spearman of dense and pruned reference-LRP
    maps), one line per method through its sparsities; None when nothing was measured."""
    pts = [(p.preserved.mean, 100 * p.acc.mean, r, p) for r in setting.rows for p in r.points
           if p.preserved is not None]
    if not pts:
        return None
    ax = axes([x for x, *_ in pts] + [1.0], [y for _, y, *_ in pts] + [100 * setting.dense.mean],
              "explanation preserved (Spearman of dense vs pruned LRP maps)", "accuracy (%)")
    series = [_series(ax, names[r.method, r.version], colors[r.method, r.version],
                      [(x, y, f"{names[r.method, r.version]} at sparsity {p.sparsity:g}: "
                              f"accuracy {pct(p.acc.mean)}%, map Spearman {x:.2f}", False)
                       for x, y, rr, p in pts if rr is r]) for r in setting.rows
              if any(rr is r for _, _, rr, _ in pts)]
    ax.update(series=series, dense={"cx": ax["sx"](1.0), "cy": ax["sy"](100 * setting.dense.mean),
                                    "title": f"dense model: its own maps (Spearman 1), "
                                             f"{pct(setting.dense.mean)}%"},
              legend=_legend(ax, [(s["name"], s["color"], "line") for s in series]
                             + [("dense model", "#555", "dense")]))
    return ax


def method_heatmaps(records: list[dict], method: str, path: Path) -> str | None:
    """A PNG of dense vs pruned reference-LRP maps at the showcase sparsities of one setting
    of ``method`` (the first, in sorted order, whose records kept maps); returns its caption."""
    from .transparency import heatmap_png, stored_maps

    kept: dict[tuple, dict[float, dict]] = {}
    for r in records:
        block = (r["metrics"] or {}).get("transparency") or {}
        if r["cell"]["method"] == method and "maps" in block:
            c = r["cell"]
            key = (c["dataset"], c["backbone"], c["granularity"], c["recovery"], c["method_version"])
            kept.setdefault(key, {})[c["sparsity"]] = block
    if not kept:
        return None
    key = sorted(kept, key=lambda k: (-len(kept[k]), k))[0]
    blocks = kept[key]
    images, dense, _ = stored_maps(next(iter(blocks.values())))
    pruned = {s: stored_maps(b)[2] for s, b in sorted(blocks.items())}
    path.parent.mkdir(parents=True, exist_ok=True)
    heatmap_png(images, dense, pruned, path)
    dataset, backbone, granularity, recovery, _ = key
    return (f"{dataset} · {backbone} · {granularity} pruning · {recovery}, seed 0: test images, "
            f"the dense model's reference-LRP maps, and the pruned models' maps at sparsity "
            f"{', '.join(f'{s:g}' for s in sorted(blocks))} (red: evidence for the true class)")
