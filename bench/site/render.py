"""Render the leaderboard site from ``reports/`` alone: Jinja2 templates fed by Python.

Python precomputes everything (``bench.results.summary`` the numbers, ``bench.site.pages``,
``bench.site.methodpage`` and ``bench.site.recordpage`` the page contexts, ``bench.site.plots`` the figures,
``bench.site.tables`` the tables and their CSV/JSON downloads); templates only loop and print, with
autoescape on (``True``, not ``select_autoescape``, which would miss ``.j2`` files). The site
is static and self-contained: no network, no CDN, no inline script or style (the pages carry a
strict Content-Security-Policy). Layout::

    index.html  metrics.html  leaderboard.json  static/  figures/
    settings/<slug>.html   datasets/<dataset>.html   methods/<method>.html (and .auc/.acc variants)
    records/<method>/<setting>.html (one column per record)     data/*.csv + *.json (downloads)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field, is_dataclass
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
from bench.site.numbers import anchor, record_group, record_pages
from bench.site.pages import (
    SUFFIX,
    dataset_context,
    html,
    index_context,
    metrics_context,
    setting_context,
)
from bench.site.plots import cd_diagram, method_heatmaps
from bench.site.recordgroup import group_context
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

    def __init__(self, assets: Path, out: Path, summary: RenderSummary,
                 site: dict[str, Any] | None = None) -> None:
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(assets / "templates"),
                                      autoescape=True, undefined=jinja2.StrictUndefined,
                                      trim_blocks=True, lstrip_blocks=True,
                                      finalize=_neutral)
        self.env.globals["site"] = site or footer_context([], Path("."))
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


REPRODUCE = ("pip install -e . && for s in leaderboard leaderboard-finetune leaderboard-vit; do "
             "xprune run benchmarks/$s.yaml --workers 2 && xprune publish runs/$s; done && "
             "xprune leaderboard --reports reports --out leaderboard/site")


def footer_context(ok: list[dict[str, Any]], final: Path, repo: Path = REPOSITORY) -> dict[str, Any]:
    """What every page's footer prints: the records behind the site, the repository (a
    relative link when the site is rendered inside it), the commands that reproduce the
    published records and the site, and a BibTeX entry."""
    from bench import __version__

    newest = max((r["provenance"]["created"][:10] for r in ok), default="")
    inside = final.resolve().is_relative_to(repo.resolve())
    rel = Path(os.path.relpath(repo.resolve(), final.resolve())).as_posix() + "/" if inside else ""
    year = newest[:4] or "2026"
    bibtex = ("@software{xprune_bench, title = {XPrune Bench: a benchmark of attribution-guided "
              "pruning of medical image classifiers}, author = {{XPrune Bench contributors}}, "
              f"year = {{{year}}}, version = {{{__version__}}}}}")
    return {"records": len(ok), "newest": newest or "none", "repo": rel, "version": __version__,
            "reproduce": REPRODUCE, "bibtex": bibtex}


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
        summary = _render_site(out, assets, recs, paths, metas, names, styles, ok, final, reports)
        _swap(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # the previous site stays as it was
        raise
    summary.out = final
    summary.pages = [final / p.relative_to(out) for p in summary.pages]
    return summary


def _render_site(out: Path, assets: Path, recs: list, paths: dict, metas: dict, names: dict,
                 styles: dict, ok: list, final: Path, reports: Path) -> RenderSummary:
    """Every page, figure and download of the site, into ``out``."""
    shutil.copytree(assets / "static", out / "static")
    summary = RenderSummary(out=out, records=len(ok))
    w = _Writer(assets, out, summary, footer_context(ok, final))
    groups = record_groups(ok, names)
    record_pages({r["cell_hash"]: page for page, rs in groups.items() for r in rs})
    w.page("metrics.html", "metrics.j2", metrics_context())
    pictures = {m: method_heatmaps(ok, m, out / "figures")
                for m in sorted({m for m, _ in metas})}  # the same pictures on every variant
    cards = dataset_cards({r["cell"]["dataset"] for r in ok})
    summaries = summarize_all(recs, names, METRICS)
    views = {metric: summaries[metric][:2] for metric in METRICS}
    summary.skipped_failed = summaries[PRIMARY][2]
    # compact: a generated file for machines (indented it triples in size)
    (out / "leaderboard.json").write_text(json.dumps(
        machine_view(views, metas, summary.skipped_failed), sort_keys=True,
        separators=(",", ":")) + "\n")
    json_size = f"{(out / 'leaderboard.json').stat().st_size / 1e6:.1f} MB"
    for metric in METRICS:  # one variant of every overview page per metric (pages.SUFFIX)
        settings, comparisons, failed = summaries[metric]
        sfx = SUFFIX[metric]
        figures = {c.slug: f"figures/cd-{c.slug}{sfx}.svg" for c in comparisons
                   if cd_diagram(c, out / "figures" / f"cd-{c.slug}{sfx}.svg", styles)}
        context, tables = index_context(settings, comparisons, names, styles, figures,
                                        methods_overview(metas, names, settings), failed)
        w.page(html("index", metric), "index.j2", {**context, "json_size": json_size}, tables)
        absent = _absent(settings, names, metas)
        for s in settings:
            w.page(html(f"settings/{s.key.slug}", metric), "setting.j2",
                   *setting_context(s, names, styles, absent[s.key.slug]))
        for dataset in sorted({s.key.dataset for s in settings}):
            w.page(html(f"datasets/{dataset}", metric), "dataset.j2",
                   *dataset_context(dataset, settings, names, styles, cards.get(dataset)))
        for method in sorted({m for m, _ in metas}):
            versions = [metas[k] for k in sorted(metas) if k[0] == method]
            w.page(html(f"methods/{method}", metric), "method.j2", *method_context(
                method, versions, settings, names, comparisons,
                [(f"../figures/{name}", caption) for name, caption in pictures[method]],
                out, REPOSITORY, styles))
    _record_pages(w, groups, paths, names, final, reports)
    summary.pages.append(out / "leaderboard.json")
    return summary


def dataset_cards(names: set[str], folder: Path = REPOSITORY / "datasets") -> dict[str, dict]:
    """The dataset cards (``datasets/<name>.yaml``) of the rendered datasets that have one."""
    import yaml

    cards = {}
    for name in sorted(names):
        path = folder / f"{name}.yaml"
        if path.is_file():
            cards[name] = yaml.safe_load(path.read_text()) or {}
    return cards


def record_groups(ok: list[dict[str, Any]], names: dict) -> dict[str, list[dict[str, Any]]]:
    """The record pages: ``records/<method>/<setting>.html`` -> its records, ordered by
    sparsity and seed (one page per method in a setting)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        c = r["cell"]
        label = names[c["method"], c["method_version"]]
        groups[record_group(label, setting_key(r).slug)].append(r)
    return {page: sorted(rs, key=lambda r: (r["cell"]["sparsity"], r["cell"]["seed"]))
            for page, rs in sorted(groups.items())}


def raw_link(record: Path, reports: Path, page_dir: Path, repo: Path = REPOSITORY) -> dict[str, str]:
    """A record's published JSON file: a relative link when the site and the reports folder
    lie in the repository (the default ``leaderboard/site``), else its path as text (the
    reports are in the repository; the site does not copy them)."""
    record, where = record.resolve(), page_dir.resolve()
    shown = f"{reports.resolve().name}/{record.relative_to(reports.resolve()).as_posix()}"
    if record.is_relative_to(repo.resolve()) and where.is_relative_to(repo.resolve()):
        return {"href": Path(os.path.relpath(record, where)).as_posix(), "text": shown}
    return {"href": "", "text": shown}


def _record_pages(w: _Writer, groups: dict[str, list[dict[str, Any]]], paths: dict[str, Path],
                  names: dict, final: Path, reports: Path) -> None:
    """One human-readable page per method in a setting, each record a column (its anchor the
    cell hash); the published JSON files are linked where they are, not copied."""
    template = w.env.get_template("records.j2")
    for page, recs in groups.items():
        c = recs[0]["cell"]
        label = names[c["method"], c["method_version"]]
        key = setting_key(recs[0])
        title = (f"{label} in {key.dataset} {key.size}px · {key.backbone} · {key.granularity} · "
                 f"{key.scope} scope · recovery {key.recovery}")
        contexts = [record_context(r, "", "") for r in recs]
        target = w.out / page
        target.parent.mkdir(parents=True, exist_ok=True)
        raw = [raw_link(paths[r["cell_hash"]], reports, final / Path(page).parent) for r in recs]
        context = group_context(title, contexts, {
            "setting_href": f"../../settings/{key.slug}.html#row-{anchor(label)}",
            "method_href": f"../../methods/{c['method']}.html", "method": label}, raw)
        target.write_text(template.render(**context))
        w.summary.record_pages += 1


def machine_view(views: dict[str, tuple[list[Setting], list[Comparison]]], metas: dict,
                 failed: int) -> dict:
    """leaderboard.json: the same numbers as the pages, raw fractions, with their cell hashes.
    ``settings`` holds what no metric changes (the dense models, every row's curve areas under
    each metric, every point), once; ``metrics.<metric>`` what each metric ranks (``bal_acc``
    the primary): the comparisons and, per setting, the leaders and the rows' ranks, operating
    points ("≤1 pt up to"), Pareto fronts and collapsed counts.
    A statistic's ``seeds`` and ``cells`` are left out where they are its point's (or row's)."""
    primary = views.get(PRIMARY) or next(iter(views.values()))
    return {
        "accuracy": "metrics.recovered.<metric> (fraction); area = trapezoid / sparsity span over "
                    "the setting's sparsities; ci = 95% t-interval over seeds",
        "primary": PRIMARY,
        "skipped_failed": failed,
        "methods": [{"name": m, "version": v, **meta} for (m, v), meta in sorted(metas.items())],
        "settings": [_setting(s) for s in primary[0]],
        "metrics": {metric: _view(settings, comparisons)
                    for metric, (settings, comparisons) in views.items()},
    }


def _stat(st: Any, seeds: tuple = (), cells: tuple = ()) -> dict | None:
    """A statistic as a dict, without the seeds and cells its container already names."""
    if st is None or not is_dataclass(st):
        return st
    out = asdict(st)
    if tuple(out["seeds"]) == tuple(seeds) and tuple(out["cells"]) == tuple(cells):
        del out["seeds"], out["cells"]
    return out


def _point(p: Any) -> dict:
    """One point: its seeds and cells once, then every statistic."""
    seeds, cells = p.acc.seeds, p.acc.cells
    out = {"sparsity": p.sparsity, "seeds": list(seeds), "cells": list(cells),
           "collapsed": p.collapsed, "within_noise": p.within_noise}
    for name in ("acc", "auc", "bal_acc", "macs", "params", "mac_reduction", "latency_b1",
                 "latency_b64", "speedup_b1", "speedup_b64", "score_seconds", "preserved", "iou"):
        out[name] = _stat(getattr(p, name), seeds, cells)
    return out


def _setting(s: Setting) -> dict:
    """What no metric changes in a setting: its axes, references and every method's points."""
    return {"slug": s.key.slug, "key": s.key._asdict(), "synthetic": s.synthetic,
            "sparsities": list(s.sparsities), "span": list(s.span),
            "dense": {m: None if d is None else asdict(d) for m, d in s.denses.items()},
            "chance": s.chance, "majority": s.majority, "dense_latency_b64": s.dense_latency_b64,
            "macs_dense": s.macs_dense,
            "rows": [_row(r) for r in s.rows]}


def _row(r: Any) -> dict:
    """A method in a setting: its curve areas under every metric (the cells of all its points,
    named once), its explanation preservation and every point."""
    seeds = tuple(sorted({x for p in r.points for x in p.acc.seeds}))
    cells = r.area.cells if r.area is not None else ()
    return {"method": r.method, "version": r.version, "complete": r.complete,
            "seeds": list(seeds), "cells": list(cells),
            "areas": {m: _stat(a, r.area.seeds if r.area else (), cells) for m, a in r.areas.items()},
            "preserved": _stat(r.preserved, r.area.seeds if r.area else (), cells),
            "points": [_point(p) for p in r.points]}


def _view(settings: list[Setting], comparisons: list[Comparison]) -> dict:
    """One metric's comparisons, and per setting what it ranks."""
    return {
        "comparisons": [{"granularity": c.granularity, "architecture": c.architecture,
                         "significance": asdict(c.significance),
                         "against": {ref: {m: asdict(t) for m, t in tests.items()}
                                     for ref, tests in c.against.items()},
                         "blocks": [k.slug for k in c.blocks],
                         "excluded": [k.slug for k in c.excluded], "left_out": list(c.left_out),
                         "per_dataset": c.per_dataset} for c in comparisons],
        "settings": [{"slug": s.key.slug, "best": [[r.method, r.version] for r in s.best],
                      "tied": [[r.method, r.version] for r in s.leaders] if len(s.leaders) > 1
                      else [],
                      "rows": [{"method": r.method, "version": r.version, "rank": r.rank,
                                "within_one_point": r.within_one_point, "pareto": list(r.pareto),
                                "collapsed": r.collapsed} for r in s.rows]} for s in settings],
    }
