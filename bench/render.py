"""Render the leaderboard site from ``reports/`` alone: one function, Jinja2 templates.

Python precomputes everything (``bench.summary`` the numbers, ``bench.pages`` the page
contexts, ``bench.plots`` the figures); templates only loop and print, with autoescape on
(``True``, not ``select_autoescape``, which would miss ``.j2`` files). The site is static and
self-contained: no network, no CDN; each record it cites is copied to ``records/``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from . import records as records_io
from .errors import RecordError, XPruneError
from .pages import index_context, method_context, setting_context
from .plots import PALETTE, cd_diagram, method_heatmaps
from .publish import safe_name
from .spec import architecture
from .summary import Comparison, Setting, summarize

ASSETS = Path(__file__).resolve().parent.parent / "leaderboard"
MARKER = ".xprune-site"


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
        _write(out / "settings" / f"{s.key.slug}.html", env.get_template("setting.j2").render(
            **setting_context(s, names, colors, not_applicable(metas, s.key.backbone))), summary)
    for method in sorted({m for m, _ in metas}):
        versions = [metas[k] for k in sorted(metas) if k[0] == method]
        picture = f"figures/heatmaps-{method}.png"
        caption = method_heatmaps([r for r in recs if r["status"] == "ok"], method, out / picture)
        _write(out / "methods" / f"{method}.html", env.get_template("method.j2").render(
            **method_context(method, versions, settings, names,
                             None if caption is None else (f"../{picture}", caption))), summary)
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


def not_applicable(metas: dict[tuple[str, str], dict], backbone: str) -> list[str]:
    """Methods of the reports whose (latest) metadata declares architectures that exclude
    ``backbone``'s: their cells were never planned, so they are shown as not applicable."""
    latest = {m: metas[m, v] for m, v in sorted(metas)}
    return sorted(m for m, meta in latest.items()
                  if meta.get("architectures", "any") != "any"
                  and architecture(backbone) not in meta["architectures"].split(","))


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
