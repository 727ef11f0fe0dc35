"""Render the leaderboard site from ``reports/`` alone: Jinja2 templates fed by Python.

Python precomputes everything (``bench.results.summary`` the numbers, ``bench.site.pages``,
``bench.site.methodpage`` and ``bench.site.recordpage`` the page contexts, ``bench.site.plots`` the figures,
``bench.site.tables`` the tables and their CSV/JSON downloads); templates only loop and print, with
autoescape on (``True``, not ``select_autoescape``, which would miss ``.j2`` files). The site
is static and self-contained: no network, no CDN, no inline script or style (the pages carry a
strict Content-Security-Policy). Layout::

    index.html  metrics.html  leaderboard.json  static/  figures/
    settings/<slug>.html   datasets/<dataset>.html   methods/<method>.html
    records/<hash>.html + <hash>.json     data/*.csv + *.json (table downloads)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from bench.core.errors import RecordError, XPruneError
from bench.core.spec import architecture
from bench.core.textsafe import neutral
from bench.results import records as records_io
from bench.results.publish import safe_name
from bench.results.summary import METRICS, PRIMARY, Comparison, Setting, setting_key, summarize_all
from bench.site.methodpage import method_context, methods_overview
from bench.site.numbers import anchor
from bench.site.pages import (
    SUFFIX,
    dataset_context,
    html,
    index_context,
    metrics_context,
    setting_context,
)
from bench.site.plots import cd_diagram, method_heatmaps
from bench.site.recordpage import record_context
from bench.site.svg import styles as method_styles
from bench.site.tables import Table, write_downloads

# Templates and static files: leaderboard/ in a checkout, bench/site/leaderboard/ in a wheel.
_PACKAGED = Path(__file__).resolve().parent / "leaderboard"
REPOSITORY = Path(__file__).resolve().parents[2]  # method plugin files are linked relative to it
ASSETS = _PACKAGED if (_PACKAGED / "templates").is_dir() else REPOSITORY / "leaderboard"
MARKER = ".xprune-site"


@dataclass
class RenderSummary:
    """What ``render`` wrote; ``str()`` is one line for the CLI."""

    out: Path
    pages: list[Path] = field(default_factory=list)
    records: int = 0
    skipped_failed: int = 0
    record_pages: int = 0
    downloads: int = 0

    def __str__(self) -> str:
        return (f"rendered {len(self.pages)} page(s) from {self.records} record(s) into {self.out}"
                f" ({self.skipped_failed} failed record(s) skipped; {self.record_pages} record "
                f"page(s), {self.downloads} download(s)); open {self.out / 'index.html'}")


def _load(reports: Path) -> tuple[list[dict[str, Any]], dict[str, Path], dict[tuple[str, str], dict]]:
    """Every record (validated, names checked, hashes unique), its file, and method metadata
    per version."""
    if not reports.is_dir():
        raise RecordError(f"reports directory {reports} does not exist (run `xprune publish` first)")
    found: dict[str, dict[str, Any]] = {}
    paths: dict[str, Path] = {}
    for path in sorted(reports.rglob("*.json")):
        if path.name.startswith(".tmp-"):
            continue
        record = records_io.read(path)
        for part in ("dataset", "backbone", "method"):
            safe_name(record["cell"][part], part)
        if found.setdefault(record["cell_hash"], record) != record:
            raise RecordError(f"{reports}: two different records for cell {record['cell_hash']}")
        paths.setdefault(record["cell_hash"], path)
    recs = [found[h] for h in sorted(found)]
    metas = {}  # per version, the newest record's metadata (a corrected description shows)
    for r in sorted((r for r in recs if r["status"] == "ok"),
                    key=lambda r: (r["provenance"]["created"], r["cell_hash"])):
        metas[(r["cell"]["method"], r["cell"]["method_version"])] = r["method"]
    return recs, paths, metas


def _check_target(out: Path, reports: Path) -> None:
    """Refuse a site folder inside the reports folder (its record copies would be read as
    records by the next render) and a non-empty folder that is not a previous site."""
    inside = out.resolve().is_relative_to(reports.resolve())
    if inside:
        raise XPruneError(f"site folder {out} is inside the reports folder {reports}; "
                          "choose an --out outside it")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise XPruneError(f"{out} is not empty and not a rendered site; choose another --out")


def _prepare(out: Path) -> Path:
    """A fresh staging folder beside ``out`` (same parent: relative links come out the same)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-site-", dir=out.parent))
    (staging / MARKER).write_text("rendered by xprune leaderboard; this directory is replaced "
                                  "on render\n")
    return staging


def _swap(staging: Path, out: Path) -> None:
    """Put the complete site in place of the previous one (two renames), then drop the old."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=".tmp-old-site-", dir=out.parent))
        os.replace(out, old / "site")
    try:
        os.replace(staging, out)
    except BaseException:
        if old is not None:
            os.replace(old / "site", out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _neutral(value: Any) -> Any:
    """Every string a template prints: control and bidi-override characters made visible."""
    if isinstance(value, markupsafe.Markup):  # already-escaped HTML (figures): same treatment
        return markupsafe.Markup(neutral(value))
    return neutral(value) if isinstance(value, str) else value


class _Writer:
    """Writes pages from templates and table downloads, counting them."""

    def __init__(self, assets: Path, out: Path, summary: RenderSummary) -> None:
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(assets / "templates"),
                                      autoescape=True, undefined=jinja2.StrictUndefined,
                                      trim_blocks=True, lstrip_blocks=True,
                                      finalize=_neutral)
        self.out, self.summary = out, summary

    def page(self, path: str, template: str, context: dict[str, Any], tables: list[Table] = (),
             count: bool = True) -> None:
        target = self.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.env.get_template(template).render(**context))
        if count:
            self.summary.pages.append(target)
        for table in tables:
            self.summary.downloads += len(write_downloads(table, self.out))


def _absent(settings: list[Setting], names: dict,
            metas: dict[tuple[str, str], dict]) -> dict[str, dict[str, list[str]]]:
    """Per setting: methods not applicable at its granularity (never run at it anywhere) or
    to its backbone (their metadata's ``architectures`` exclude the backbone's), and methods
    applicable but not run in it."""
    every = sorted(set(names.values()))
    by_gran: dict[str, set[str]] = defaultdict(set)
    for s in settings:
        by_gran[s.key.granularity] |= {names[r.method, r.version] for r in s.rows}
    out = {}
    for s in settings:
        here = {names[r.method, r.version] for r in s.rows}
        excluded = {names[k] for k, meta in metas.items()
                    if meta.get("architectures", "any") != "any"
                    and architecture(s.key.backbone) not in meta["architectures"].split(",")}
        out[s.key.slug] = {
            "not_applicable": [n for n in every if n not in by_gran[s.key.granularity]],
            "not_for_backbone": [n for n in sorted(by_gran[s.key.granularity])
                                 if n in excluded and n not in here],
            "not_run": [n for n in sorted(by_gran[s.key.granularity])
                        if n not in here and n not in excluded]}
    return out


def render(reports: Path | str = "reports", out: Path | str = "leaderboard/site",
           assets: Path | str = ASSETS) -> RenderSummary:
    """Render every page, the table downloads and leaderboard.json into ``out``."""
    reports, out, assets = Path(reports), Path(out), Path(assets)
    if not (assets / "templates").is_dir():
        raise XPruneError(f"leaderboard templates not found in {assets / 'templates'}")
    recs, paths, metas = _load(reports)
    multi = {m for m, v in metas if sum(1 for mm, _ in metas if mm == m) > 1}
    names = {(m, v): f"{m} v{v}" if m in multi else m for m, v in metas}
    styles = method_styles(names.values())
    ok = [r for r in recs if r["status"] == "ok"]
    _check_target(out, reports)
    final, out = out, _prepare(out)  # rendered into ``out`` (staging), swapped in when complete
    try:
        summary = _render_site(out, assets, recs, paths, metas, names, styles, ok)
        _swap(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # the previous site stays as it was
        raise
    summary.out = final
    summary.pages = [final / p.relative_to(out) for p in summary.pages]
    return summary


def _render_site(out: Path, assets: Path, recs: list, paths: dict, metas: dict, names: dict,
                 styles: dict, ok: list) -> RenderSummary:
    """Every page, figure and download of the site, into ``out``."""
    shutil.copytree(assets / "static", out / "static")
    colors = {n: s.color for n, s in styles.items()}
    summary = RenderSummary(out=out, records=len(ok))
    w = _Writer(assets, out, summary)
    w.page("metrics.html", "metrics.j2", metrics_context())
    captions = {m: method_heatmaps(ok, m, out / f"figures/heatmaps-{m}.png")
                for m in sorted({m for m, _ in metas})}  # the same picture on every variant
    views = {}
    summaries = summarize_all(recs, names, METRICS)
    for metric in METRICS:  # one variant of every overview page per metric (pages.SUFFIX)
        settings, comparisons, failed = summaries[metric]
        views[metric] = (settings, comparisons)
        summary.skipped_failed = failed
        sfx = SUFFIX[metric]
        figures = {c.slug: f"figures/cd-{c.slug}{sfx}.svg" for c in comparisons
                   if cd_diagram(c, out / "figures" / f"cd-{c.slug}{sfx}.svg", colors)}
        w.page(html("index", metric), "index.j2", *index_context(
            settings, comparisons, names, styles, figures,
            methods_overview(metas, names, settings), failed))
        absent = _absent(settings, names, metas)
        for s in settings:
            w.page(html(f"settings/{s.key.slug}", metric), "setting.j2",
                   *setting_context(s, names, styles, absent[s.key.slug]))
        for dataset in sorted({s.key.dataset for s in settings}):
            w.page(html(f"datasets/{dataset}", metric), "dataset.j2",
                   *dataset_context(dataset, settings, names))
        for method in sorted({m for m, _ in metas}):
            versions = [metas[k] for k in sorted(metas) if k[0] == method]
            picture = f"figures/heatmaps-{method}.png"
            caption = captions[method]
            w.page(html(f"methods/{method}", metric), "method.j2", *method_context(
                method, versions, settings, names, comparisons,
                None if caption is None else (f"../{picture}", caption), out, REPOSITORY))
    _record_pages(w, ok, paths, names)
    # compact: a generated file for machines (indented it triples in size)
    (out / "leaderboard.json").write_text(json.dumps(
        machine_view(views, metas, summary.skipped_failed), sort_keys=True,
        separators=(",", ":")) + "\n")
    summary.pages.append(out / "leaderboard.json")
    return summary


def _record_pages(w: _Writer, ok: list[dict[str, Any]], paths: dict[str, Path], names: dict) -> None:
    """records/<hash>.html (human-readable) and records/<hash>.json (the published file)."""
    (w.out / "records").mkdir(exist_ok=True)
    template = w.env.get_template("record.j2")
    for r in ok:
        c = r["cell"]
        label = names[c["method"], c["method_version"]]
        point = (f"../settings/{setting_key(r).slug}.html"
                 f"#pt-{anchor(label)}-{c['sparsity']:g}")
        context = record_context(r, point, f"../methods/{c['method']}.html")
        (w.out / "records" / f"{r['cell_hash']}.html").write_text(template.render(**context))
        shutil.copyfile(paths[r["cell_hash"]], w.out / "records" / f"{r['cell_hash']}.json")
        w.summary.record_pages += 1


def machine_view(views: dict[str, tuple[list[Setting], list[Comparison]]], metas: dict,
                 failed: int) -> dict:
    """leaderboard.json: the same numbers as the pages, raw fractions, with their cell hashes,
    per metric (``bal_acc`` the primary, ranking one; ``auc``; ``acc``)."""
    return {
        "accuracy": "metrics.recovered.<metric> (fraction); area = trapezoid / sparsity span over "
                    "the setting's sparsities; ci = 95% t-interval over seeds",
        "primary": PRIMARY,
        "skipped_failed": failed,
        "methods": [{"name": m, "version": v, **meta} for (m, v), meta in sorted(metas.items())],
        "metrics": {metric: _view(settings, comparisons)
                    for metric, (settings, comparisons) in views.items()},
    }


def _view(settings: list[Setting], comparisons: list[Comparison]) -> dict:
    """One metric's comparisons and settings."""
    return {
        "comparisons": [{"granularity": c.granularity, "architecture": c.architecture,
                         "significance": asdict(c.significance),
                         "against": {ref: {m: asdict(t) for m, t in tests.items()}
                                     for ref, tests in c.against.items()},
                         "blocks": [k.slug for k in c.blocks],
                         "excluded": [k.slug for k in c.excluded], "left_out": list(c.left_out),
                         "per_dataset": c.per_dataset} for c in comparisons],
        "settings": [{"slug": s.key.slug, "key": s.key._asdict(), "synthetic": s.synthetic,
                      "sparsities": list(s.sparsities), "span": list(s.span),
                      "dense": None if s.dense is None else asdict(s.dense),
                      "dense_auc": None if s.dense_auc is None else asdict(s.dense_auc),
                      "chance": s.chance, "majority": s.majority,
                      "dense_latency_b64": s.dense_latency_b64,
                      "macs_dense": s.macs_dense, "best": [[r.method, r.version] for r in s.best],
                      "tied": [[r.method, r.version] for r in s.leaders] if len(s.leaders) > 1
                      else [],
                      "rows": [asdict(r) for r in s.rows]} for s in settings],
    }
