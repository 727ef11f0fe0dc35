"""Numbers as the leaderboard prints them: percentages, SI suffixes, and table cells that carry
their sort key, their raw value and interval (for the CSV/JSON downloads), a tooltip (seeds,
interval) and their way to the records they come from.

A cell reaches its records in one of three ways: per-seed links (``s0 s1 s2``, to the record
pages), its number linked to the place that lists them (``href``: a row of a setting page), or
(``links=False``) through its table row, whose first cell links such a place.
"""

from __future__ import annotations

import re
from typing import Any

from bench.results.summary import Stat


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal."""
    return "—" if x is None else f"{100 * x:.1f}"


def si(x: float) -> str:
    """A count with a k/M/G suffix."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def si_fixed(reference: float) -> Any:
    """A count formatter for one column: the k/M/G unit of ``reference`` (its largest value)
    and two decimals for every row, so the column's numbers line up."""
    div, suffix = next(((d, u) for d, u in ((1e9, "G"), (1e6, "M"), (1e3, "k")) if abs(reference) >= d),
                       (1.0, ""))

    def fmt(x: float) -> str:
        return f"{x / div:.2f}{suffix}"
    return fmt


def g3(x: float) -> str:
    """Three significant digits (ratios, milliseconds, seconds)."""
    return f"{x:.3g}"


def f2(x: float) -> str:
    """Two decimals (ratios, milliseconds, seconds in tables: one format per column)."""
    return f"{x:.2f}"


def g2(x: float) -> str:
    """Two decimals (correlations)."""
    return f"{x:.2f}"


def sort_key(x: float) -> str:
    """A compact numeric sort key (the CSV keeps full precision)."""
    return f"{x:.7g}"


def anchor(label: str) -> str:
    """An id-safe form of a method label (``taylor v2`` -> ``taylor-v2``)."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", label)


RECORD_PAGES: dict[str, str] = {}  # cell hash -> its group's record page, site-relative (render sets it)


def record_pages(pages: dict[str, str]) -> None:
    """Where each record is listed: ``records/<method>/<setting>.html`` per cell hash."""
    RECORD_PAGES.clear()
    RECORD_PAGES.update(pages)


def record_group(label: str, slug: str) -> str:
    """The site-relative page listing a method's records in a setting."""
    return f"records/{anchor(label)}/{slug}.html"


def record_href(root: str, cell_hash: str) -> str:
    """Where a record's human-readable column is, from a page at ``root``: its anchor on the
    page of its method in its setting."""
    return f"{root}{RECORD_PAGES[cell_hash]}#{cell_hash}"


_BLANK = {"text": "", "sort": "", "title": "", "links": [], "href": "", "value": None, "lo": None,
          "hi": None, "n": 0, "sub": "", "swatch": None, "ci": ""}  # every key a template reads


def num(s: Stat | None, fmt: Any = pct, root: str = "../", detail: str = "",
        table: str = "", href: str = "", links: bool = True) -> dict[str, Any]:
    """A number cell: text (the mean), ci (``[low–high]``, its 95% interval, "" when none or when
    it prints as the mean), sort key, raw value and interval, an optional
    tooltip (``detail``) and its record links (see the module docstring).

    A number derived from more records than seeds (a curve area) cannot link one record per
    seed: it links ``table`` (or ``href``), the place that lists its points.
    """
    if s is None:
        return {**_BLANK, "text": "—", "title": "not measured"}
    text = fmt(s.mean)
    ci = "" if s.ci is None else f"[{fmt(s.ci[0])}–{fmt(s.ci[1])}]"
    ci = "" if ci == f"[{text}–{text}]" else ci  # seeds that agree to the printed digits
    title = detail.strip("; ")  # headers explain their columns; links and text show the seeds
    per_seed = len(s.seeds) == len(s.cells)
    out = [] if not links or href else (
        [{"href": record_href(root, h), "label": f"s{seed}"} for seed, h in zip(s.seeds, s.cells)]
        if per_seed else [{"href": table, "label": "points"}] if table else [])
    return {**_BLANK, "text": text, "ci": ci, "sort": sort_key(s.mean), "title": title, "links": out,
            "href": href, "value": s.mean, "lo": s.ci[0] if s.ci else None,
            "hi": s.ci[1] if s.ci else None, "n": s.n}


def plain(text: str, sort: Any = None, title: str = "", href: str = "") -> dict[str, Any]:
    """A derived or text cell shaped like :func:`num`; a None sort key sorts last."""
    number = isinstance(sort, (int, float)) and not isinstance(sort, bool)
    key = "" if sort is None else sort_key(float(sort)) if number else str(sort)
    return {**_BLANK, "text": text, "sort": key, "title": title, "href": href, "value": sort}
