"""Numbers as the leaderboard prints them: percentages, SI suffixes, table cells that carry
their sort key, tooltip (seeds, interval) and links to the records they come from."""

from __future__ import annotations

from typing import Any

from .summary import Stat


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


