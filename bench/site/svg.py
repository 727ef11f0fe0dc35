"""SVG geometry for the leaderboard's plots: scales and ticks, a colour *and* a marker per
method, and series with interval bands, whiskers and marked points.

Python computes every coordinate and path here; the templates only print them
(``macros.j2``'s ``plot``). The view box is small (440 x 300) and the text large (14 units), so
that a plot shrunk to a 390 px phone screen still has ~12 px text; the main plot of a setting
is wider (640 x 360) and gets larger text on phones from the stylesheet.

Method styles are stable by name: the 13 built-in methods have pinned (colour, marker) pairs,
all thirteen colours and all thirteen markers different; any other method takes the first
unused pair, in sorted order of names, so a plugin never changes the built-ins' look. A series
is highlighted (its colour, band and whiskers) or muted (grey, thin: ``static/style.css``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

W, H, LEFT, RIGHT, TOP, BOTTOM = 440, 300, 58, 14, 12, 50
WIDE = (640, 360, 76, 84, 58)  # the main plot: width, height, left, right and bottom margins
# (the reference lines' labels sit right of the frame; phones get larger text, style.css)
FONT = 14  # tick and axis-label size in view-box units

# 13 colours chosen (a search over the sRGB cube, lightness 25-74, chroma > 35) so that every
# pair differs by CIE76 ΔE >= 28 in normal vision and under simulated deuteranopia and
# protanopia (Machado et al. 2009, severity 1); tests/test_render.py recomputes it.
COLORS = ("#4b87ff", "#0fc3ff", "#d2b400", "#c35aa5", "#3c1eb4", "#ff9678", "#780078",
          "#4b3c00", "#b45a5a", "#877800", "#2d00ff", "#781e4b", "#ff96b4")
MUTED = "#c4c8ce"  # the series not highlighted: one grey, lighter than every method colour


def _polygon(vertices: list[tuple[float, float]]) -> str:
    """A closed path relative to the current point, from vertices around (0, 0)."""
    out, (px, py) = [f"m{vertices[0][0]:g},{vertices[0][1]:g}"], vertices[0]
    for x, y in vertices[1:]:
        out.append(f"l{round(x - px, 2):g},{round(y - py, 2):g}")
        px, py = x, y
    return "".join(out) + "z"


def _regular(n: int, r: float, start: float = -90.0, inner: float | None = None) -> str:
    """A regular polygon (or a star when ``inner`` radius is given) of radius r."""
    step = 360 / n
    pts = []
    for i in range(n):
        for radius, angle in ((r, start + i * step),) + (((inner, start + (i + .5) * step),)
                                                           if inner else ()):
            a = math.radians(angle)
            pts.append((round(radius * math.cos(a), 2), round(radius * math.sin(a), 2)))
    return _polygon(pts)


def _cross(w: float, r: float, turn: float) -> str:
    """A plus sign of arm half-width w and reach r, turned by ``turn`` degrees."""
    base = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w),
            (-r, w), (-r, -w), (-w, -w)]
    c, s = math.cos(math.radians(turn)), math.sin(math.radians(turn))
    return _polygon([(round(x * c - y * s, 2), round(x * s + y * c, 2)) for x, y in base])


MARKERS = {  # relative path data around the point, ~11 units across
    "circle": "m-5,0a5,5 0 1,0 10,0a5,5 0 1,0 -10,0z",
    "square": "m-4.5,-4.5h9v9h-9z",
    "diamond": "m0,-6.5l6,6.5l-6,6.5l-6,-6.5z",
    "triangle-up": _regular(3, 6.5),
    "triangle-down": _regular(3, 6.5, 90),
    "triangle-left": _regular(3, 6.5, 180),
    "triangle-right": _regular(3, 6.5, 0),
    "plus": _cross(1.8, 6, 0),
    "cross": _cross(1.8, 6.5, 45),
    "star": _regular(5, 7, inner=3),
    "pentagon": _regular(5, 6),
    "hexagon": _regular(6, 6),
    "bowtie": "m-6,-5.5l12,11v-11l-12,11z",
}
MATPLOTLIB = {"circle": "o", "square": "s", "diamond": "D", "triangle-up": "^", "triangle-down": "v",
              "triangle-left": "<", "triangle-right": ">", "plus": "P", "cross": "X", "star": "*",
              "pentagon": "p", "hexagon": "h", "bowtie": [(-1, -1), (1, 1), (1, -1), (-1, 1)]}
MARKER_NAMES = tuple(MARKERS)

PINNED = {  # built-in method -> (colour index, marker); every colour and marker used once
    "magnitude": (0, "circle"), "taylor": (1, "square"), "ig": (2, "star"),
    "lrp-epsilon": (3, "diamond"), "backtrace": (4, "plus"), "activation": (5, "triangle-down"),
    "lrp-gamma": (6, "triangle-up"), "random": (7, "cross"), "gradient": (8, "triangle-left"),
    "bn-scale": (9, "pentagon"), "backtrace-contrast": (10, "triangle-right"),
    "lrp-alphabeta": (11, "hexagon"), "lrp-attn": (12, "bowtie"),
}


@dataclass(frozen=True)
class Style:
    """How one method is drawn everywhere on the site."""

    color: str
    marker: str  # a key of MARKERS
    symbol: str = ""  # the id of its swatch <symbol> on a page (see ``symbols``)

    def at(self, x: float, y: float) -> str:
        """Path data of this marker centred on (x, y)."""
        return f"M{x:g},{y:g}{MARKERS[self.marker]}"


PAIRS = tuple((c, MARKER_NAMES[(c + k) % len(MARKER_NAMES)])
              for k in range(len(MARKER_NAMES)) for c in range(len(COLORS)))


def styles(labels: Iterable[str]) -> dict[str, Style]:
    """A distinct (colour, marker) for each label: pinned for the built-ins; any other label,
    in sorted order, takes the next pair not pinned (the 13 colours each with a different
    marker first, then the colours again with shifted markers; after 169 pairs they repeat)."""
    free = [p for p in PAIRS if p not in set(PINNED.values())]
    out, taken = {}, 0
    for label in sorted(set(labels)):
        if label in PINNED:
            c, m = PINNED[label]
        else:
            c, m = free[taken % len(free)]
            taken += 1
        out[label] = Style(COLORS[c], m, "mk-" + re.sub(r"[^A-Za-z0-9_.-]", "-", label))
    return out


def symbols(all_styles: dict[str, Style]) -> list[dict[str, str]]:
    """The swatch of every method (a line and its marker in a 22 x 16 box) as ``<symbol>``
    definitions printed once per page; swatches in tables and legends ``<use>`` them."""
    return [{"id": st.symbol, "color": st.color, "d": st.at(11, 8)}
            for _, st in sorted(all_styles.items())]


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


def axes(xs: list[float], ys: list[float], x_label: str, y_label: str,
         wide: bool = False) -> dict[str, Any]:
    """Scales, ticks and frame for a plot of these values (at most 5 x ticks: they must fit
    side by side at 14 units); ``wide`` is the larger main plot of a setting page."""
    w, h, left, right, bottom = WIDE if wide else (W, H, LEFT, RIGHT, BOTTOM)
    xt, yt = nice_ticks(min(xs), max(xs), 4), nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = left, w - right, h - bottom, TOP

    def sx(v: float) -> float:
        return round(x0 + (v - xt[0]) / (xt[-1] - xt[0]) * (x1 - x0), 2)

    def sy(v: float) -> float:
        return round(y0 - (v - yt[0]) / (yt[-1] - yt[0]) * (y0 - y1), 2)

    return {"sx": sx, "sy": sy, "x_range": (xt[0], xt[-1]), "y_range": (yt[0], yt[-1]),
            "width": w, "height": h, "wide": wide,
            "x0": x0, "x1": x1, "y0": y0, "y1": y1, "font": FONT,
            # tick marks 5 units long, labels 20 below / 8 left of the axis
            "x_tick_end": y0 + 5, "x_tick_label_y": y0 + 20,
            "y_tick_start": x0 - 5, "y_tick_label_x": x0 - 8,
            "x_ticks": [{"x": sx(t), "label": _label(t, xt)} for t in xt],
            "y_ticks": [{"y": sy(t), "label_y": sy(t) + 5, "label": _label(t, yt)} for t in yt],
            "x_label": x_label, "y_label": y_label, "x_mid": (x0 + x1) / 2, "y_mid": (y0 + y1) / 2,
            "x_label_y": h - 8, "ref_label_x": x1 + 4,
            "refs": [], "front": "", "dense": None, "series": [], "markers": {}}


@dataclass(frozen=True)
class Mark:
    """One point of a series: position, its 95% intervals (None: one seed), tooltip, flags."""

    x: float
    y: float
    title: str
    y_ci: tuple[float, float] | None = None
    x_ci: tuple[float, float] | None = None
    hollow: bool = False  # a collapsed point
    front: bool = False  # on the Pareto front
    href: str = ""  # where its records are listed


def series(ax: dict[str, Any], name: str, style: Style, marks: list[Mark],
           band: bool = False, highlight: bool = True) -> dict[str, Any]:
    """One method's line, markers, and either a shaded interval band (y intervals joined along
    the line) or whiskers (x and y intervals as crossing bars at each point), every interval
    clipped to the axes. A series not highlighted is drawn muted (grey, thin, no band or
    whiskers: ``static/style.css``) until the reader highlights it."""
    sx, sy = ax["sx"], ax["sy"]
    lo, hi = ax["y_range"]
    xlo, xhi = ax["x_range"]

    def clip(v: float) -> float:
        return sy(min(max(v, lo), hi))

    def xclip(v: float) -> float:
        return sx(min(max(v, xlo), xhi))

    out = {"name": name, "color": style.color, "band": "", "whiskers": "",
           "cls": "series hl" if highlight else "series muted",
           "path": " ".join(f"{sx(m.x):g},{sy(m.y):g}" for m in marks), "points": []}
    with_ci = [m for m in marks if m.y_ci is not None]
    if band and with_ci:
        upper = [f"{sx(m.x):g},{clip(m.y_ci[1] if m.y_ci else m.y):g}" for m in marks]
        lower = [f"{sx(m.x):g},{clip(m.y_ci[0] if m.y_ci else m.y):g}" for m in reversed(marks)]
        out["band"] = " ".join(upper + lower)
    elif not band:
        bars = [f"M{sx(m.x):g},{clip(m.y_ci[0]):g}V{clip(m.y_ci[1]):g}" for m in with_ci]
        bars += [f"M{xclip(m.x_ci[0]):g},{sy(m.y):g}H{xclip(m.x_ci[1]):g}" for m in marks
                 if m.x_ci is not None]
        out["whiskers"] = "".join(bars)
    for m in marks:
        x, y = sx(m.x), sy(m.y)
        ax["markers"][style.marker] = f"M0,0{MARKERS[style.marker]}"
        out["points"].append({
            "marker": style.marker, "title": m.title, "front": m.front, "cx": x, "cy": y, "href": m.href,
            "fill": "#fff" if m.hollow else style.color,
            "stroke": style.color if m.hollow else "#fff", "cls": "pt collapsed" if m.hollow else "pt"})
    return out


def legend(names: Iterable[str], all_styles: dict[str, Style],
           highlighted: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Legend entries (HTML buttons that highlight a series in every plot): name, colour, its
    swatch symbol, and whether it starts highlighted."""
    on = set(highlighted)
    return [{"name": n, "color": all_styles[n].color, "symbol": all_styles[n].symbol,
             "on": n in on} for n in names]
