"""Tables of the leaderboard as data: one definition gives the HTML table (``macros.j2``'s
``table``: sortable, filterable, first column frozen) and its CSV and JSON downloads, so a
download always has the table's columns and numbers.

A download has, per table column, the column's key holding the raw value (a fraction, not a
percentage; 7 significant digits, as the pages sort by: ``leaderboard.json`` keeps full precision), then ``<key>_lo`` and ``<key>_hi`` (its 95% interval) for columns
with intervals; ``export`` columns (the setting's axes, say) come first, and ``records`` (the
cell hashes behind a row) last where rows carry them.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AXES = ("dataset", "backbone", "granularity", "scope", "recovery")  # filterable setting axes


@dataclass(frozen=True)
class Column:
    """One column: CSV/JSON key, header text, header tooltip; ``text`` columns sort as text."""

    key: str
    header: str
    tip: str = ""
    text: bool = False
    interval: bool = False  # the download adds <key>_lo and <key>_hi
    more: bool = False  # behind the column chooser: shown on request (key columns always)


@dataclass
class Table:
    """A table and its downloads. Rows are dicts: ``cells`` (one per column, shaped like
    :func:`bench.site.numbers.num`), ``attrs`` (filter values, printed as ``data-*``), ``id`` (an
    anchor or ""), ``export`` (values of the export-only columns) and ``records`` (hashes)."""

    id: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    download: str = ""  # site-relative path without extension; "" for none
    filters: list[str] = field(default_factory=list)  # axes offered as filters
    export: tuple[str, ...] = ()  # export-only column keys, first in the download
    caption: str = ""

    def add(self, cells: list[dict[str, Any]], attrs: dict[str, str] | None = None,
            anchor: str = "", export: dict[str, Any] | None = None,
            records: tuple[str, ...] = ()) -> None:
        """Append a row (cells in column order)."""
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.id}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append({"cells": cells, "attrs": sorted((attrs or {}).items()), "id": anchor,
                          "export": export or {}, "records": records})

    def filter_options(self) -> list[dict[str, Any]]:
        """Each filter with the values its rows take (sorted), for the filter bar."""
        out = []
        for key in self.filters:
            values = sorted({v for r in self.rows for k, v in r["attrs"] if k == key})
            if len(values) > 1:
                out.append({"key": key, "options": values})
        return out

    def header(self) -> list[str]:
        """The download's column names."""
        names = list(self.export)
        for c in self.columns:
            names += [c.key, f"{c.key}_lo", f"{c.key}_hi"] if c.interval else [c.key]
        return names + (["records"] if any(r["records"] for r in self.rows) else [])

    def records(self) -> list[dict[str, Any]]:
        """The download's rows as dicts (raw values; None where not measured)."""
        with_records = any(r["records"] for r in self.rows)
        out = []
        for r in self.rows:
            row = {k: r["export"].get(k) for k in self.export}
            for c, cell in zip(self.columns, r["cells"]):
                row[c.key] = cell["value"]
                if c.interval:
                    row[f"{c.key}_lo"], row[f"{c.key}_hi"] = cell["lo"], cell["hi"]
            if with_records:
                row["records"] = " ".join(r["records"])
            out.append(row)
        return out

    def context(self, root: str) -> dict[str, Any]:
        """What the ``table`` macro prints."""
        more = sum(c.more for c in self.columns)
        return {"id": self.id, "columns": self.columns, "rows": self.rows, "caption": self.caption,
                "filters": self.filter_options(), "more": more, "all": len(self.columns),
                "legend": [{"header": c.header, "tip": c.tip} for c in self.columns if c.tip],
                "csv": f"{root}{self.download}.csv" if self.download else "",
                "json": f"{root}{self.download}.json" if self.download else ""}


def _digits(value: float) -> str:
    """A raw value with 7 significant digits (the precision of the pages' sort keys)."""
    return f"{value:.7g}"


def write_downloads(table: Table, site: Path) -> list[Path]:
    """Write ``<download>.csv`` and ``<download>.json`` under the site; [] without a download."""
    if not table.download:
        return []
    rows = table.records()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=table.header(), lineterminator="\n")
    writer.writeheader()
    writer.writerows([{k: "" if v is None else _digits(v) if isinstance(v, float) else v
                       for k, v in row.items()} for row in rows])
    base = site / table.download
    base.parent.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = base.with_name(base.name + ".csv"), base.with_name(base.name + ".json")
    csv_path.write_text(buf.getvalue())
    header = table.header()
    json_path.write_text(json.dumps({"columns": header, "rows": [
        [float(_digits(row[k])) if isinstance(row[k], float) else row[k] for k in header]
        for row in rows]}, separators=(",", ":")) + "\n")
    return [csv_path, json_path]
