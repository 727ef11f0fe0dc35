"""Page contexts of the leaderboard's overview pages (index, setting, dataset, metrics): plain
dicts and :class:`bench.tables.Table` objects with every number formatted, sort keys, tooltips,
record links and plot geometry precomputed, so the templates only loop and print.

Anchors tie numbers to records: a setting page has ``row-<method>`` on each method's row
(whose numbers link their records per seed) and ``pt-<method>-<sparsity>`` on each row of its
table of points (whose Records cell links them); summary views elsewhere link there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .numbers import anchor, g2, g3, num, pct, plain, si
from .plots import setting_plots
from .summary import ONE_POINT, Comparison, Point, Row, Setting, Stat
from .svg import Style, legend
from .tables import AXES, Column, Table


def setting_href(s: Setting, root: str, label: str = "", sparsity: float | None = None) -> str:
    """A setting page, or its row of a method, or its row of one point."""
    page = f"{root}settings/{s.key.slug}.html"
    if not label:
        return page
    return page + (f"#row-{anchor(label)}" if sparsity is None else f"#pt-{anchor(label)}-{sparsity:g}")


def setting_title(setting: Setting) -> str:
    """A human-readable name for a setting."""
    k = setting.key
    synthetic = " (synthetic data)" if setting.synthetic else ""
    return (f"{k.dataset}{synthetic} {k.size}px · {k.backbone} · {k.granularity} · {k.scope} "
            f"scope · recovery {k.recovery}")


def axes_of(s: Setting) -> dict[str, str]:
    """The filterable axes of a setting (``data-*`` attributes of its rows)."""
    return {a: getattr(s.key, a) for a in AXES}


def label_cell(s: Setting, href: str, dataset: bool = True, size: bool = True) -> dict[str, Any]:
    """A frozen first cell naming a setting on two lines (the image size only where a table
    mixes sizes)."""
    k = s.key
    head = " · ".join(([k.dataset] if dataset else []) + [k.backbone])
    head += f" {k.size}px" if size else ""
    return {**plain(head, s.key.slug, "", href),
            "sub": f"{k.granularity} · {k.scope} · {k.recovery}"}


def _mixed_sizes(settings: Iterable[Setting]) -> bool:
    return len({s.key.size for s in settings}) > 1


def operating_point(row: Row) -> Point | None:
    """The largest sparsity whose mean accuracy stays within one point of the dense model."""
    return next((p for p in row.points if p.sparsity == row.within_one_point), None)


def _speedup(p: Point | None, root: str, href: str = "", links: bool = True) -> dict[str, Any]:
    """Measured batch-64 speed-up, marked when its interval contains 1 in most cells."""
    cell = num(p.speedup_b64 if p else None, g3, root, href=href, links=links)
    if p is not None and p.within_noise is not None and p.within_noise >= 0.5:
        cell = {**cell, "ci": (cell["ci"] + " noise").strip(),
                "title": "within noise: the speed-up's interval contains 1 in most of its cells"}
    return cell


def _within(row: Row, href: str = "") -> dict[str, Any]:
    within = row.within_one_point
    return plain("none" if within is None else f"{within:g}", within, "", href)


def _collapsed(row: Row, href: str = "") -> dict[str, Any]:
    return plain("—" if row.collapsed is None else str(row.collapsed), row.collapsed, "", href)


def _method_cell(label: str, root: str, style: Style | None = None) -> dict[str, Any]:
    cell = plain(label, label, "", f"{root}methods/{label.split(' v')[0]}.html")
    return {**cell, "swatch": None if style is None else {"d": style.at(11, 8), "color": style.color}}


# ---------------------------------------------------------------- index

def settings_table(settings: list[Setting], names: dict) -> Table:
    """Per setting, the best method at a glance; every number links its setting page's rows."""
    t = Table("settings", [
        Column("setting", "Setting", "dataset, backbone; granularity · scope · recovery", text=True),
        Column("dense_acc", "Dense ACC", "the unpruned model's test accuracy (%), mean over seeds",
               interval=True),
        Column("best", "Best method", "largest area under the accuracy-vs-sparsity curve", text=True),
        Column("area", "Curve area", "the best method's area under accuracy vs sparsity (%), "
               "mean over seeds [95% interval]", interval=True),
        Column("within", "≤1 pt up to", "largest sparsity at which the best method's accuracy is "
               "within 1 point of the dense model (its operating point)"),
        Column("mac_reduction", "MAC reduction", "dense / pruned MACs (×) at the operating point "
               "(theoretical)", interval=True),
        Column("speedup", "Speed-up", "measured speed-up (×): CPU latency ratio at batch 64 at the "
               "operating point [95% interval]", interval=True),
        Column("preserved", "Expl. preserved", "explanation preserved: Spearman of dense vs pruned "
               "LRP maps at the operating point [95% interval]; 1 = same pixel ranking",
               interval=True),
        Column("collapsed", "Collapsed", "collapsed points (sparsity x seed) of the best method"),
    ], download="data/settings", filters=list(AXES),
        export=("slug", "dataset", "size", "backbone", "granularity", "scope", "recovery", "seeds",
                "tied"))
    for s in settings:
        best = s.best[0] if s.best else None
        label = names[best.method, best.version] if best else ""
        op = operating_point(best) if best else None
        at = setting_href(s, "", label, op.sparsity) if op else ""
        none = plain("—", None, "no sparsity within 1 point of the dense model")
        seeds = best.area.n if best else 0
        tied = ", ".join(names[r.method, r.version] for r in s.best[1:])
        t.add([{**label_cell(s, setting_href(s, ""), size=_mixed_sizes(settings)),
                "sub": f"{s.key.granularity} · {s.key.scope} · {s.key.recovery} · {seeds} seed(s)"},
               num(s.dense, root="", href=setting_href(s, "") + "#dense"),
               {**plain(label or "—", label, "", f"methods/{best.method}.html" if best else ""),
                "sub": f"tied with {tied}" if tied else ""},
               num(best.area if best else None, root="", href=setting_href(s, "", label)),
               _within(best, setting_href(s, "", label)) if best else plain("—"),
               num(op.mac_reduction, g3, "", href=at) if op else none,
               _speedup(op, "", at) if op else none,
               num(op.preserved, g2, "", href=at) if op else none,
               _collapsed(best, setting_href(s, "", label)) if best else plain("—")],
              axes_of(s), export={"slug": s.key.slug, "size": s.key.size, "seeds": seeds,
                                  "tied": tied, **axes_of(s)})
    return t


def ranks_table(c: Comparison, names_by_label: dict[str, str],
                styles: dict[str, Style] | None = None) -> Table:
    """Mean ranks of one granularity's comparison, overall and per dataset; each rank links the
    method page filtered to the settings behind it."""
    sig = c.significance
    datasets = sorted({d for per in c.per_dataset.values() for d in per})
    t = Table(f"ranks-{c.granularity}", [
        Column("method", "Method", text=True),
        Column("mean_rank", "Mean rank", "mean rank over the compared settings (1 = best)"),
        *[Column(f"rank_{d}", d, f"mean rank over the compared settings of {d}") for d in datasets],
        Column("beats", "Ranks better than (significant)", "methods the Nemenyi test separates "
               "from it (after a significant Friedman test)", text=True)],
        download=f"data/ranks-{c.granularity}")
    for name in sig.methods:
        page = f"methods/{names_by_label[name]}.html#granularity={c.granularity}"
        beats = [m for m in sig.methods if sig.mean_ranks[m] > sig.mean_ranks[name] and sig.differs(name, m)]
        t.add([_method_cell(name, "", (styles or {}).get(name)),
               plain(f"{sig.mean_ranks[name]:.2f}", sig.mean_ranks[name], "", page),
               *[plain(f"{c.per_dataset[name][d]:.2f}", c.per_dataset[name][d], "",
                       f"{page}&dataset={d}") if d in c.per_dataset.get(name, {}) else plain("—")
                 for d in datasets],
               plain(", ".join(beats) or "—", ", ".join(beats))])
    return t


def comparison_context(c: Comparison, names_by_label: dict[str, str], figure: str | None,
                       table: Table) -> dict:
    """One granularity's Friedman / Nemenyi comparison, as the index prints it."""
    sig = c.significance
    test = ("Friedman test not applicable (fewer than 3 methods or 2 settings)"
            if sig.p_value is None else
            f"Friedman χ² = {sig.statistic:.2f}, p = {sig.p_value:.2g} over {sig.blocks} settings; "
            f"Nemenyi critical difference of mean ranks {sig.critical_difference:.2f} (α = {sig.alpha})")
    return {"granularity": c.granularity, "test": test, "significant": sig.significant,
            "table": table.context(""), "figure": figure,
            "excluded": len(c.excluded), "left_out": ", ".join(c.left_out)}


# ---------------------------------------------------------------- setting page

def methods_table(setting: Setting, names: dict, styles: dict[str, Style]) -> Table:
    """One row per method: rank, curve areas, accuracy and AUC per sparsity, operating figures.
    Numbers of one sparsity link their records per seed; numbers derived from the whole curve
    (areas, preservation) come from exactly the records the row links."""
    sp = [f"{s:g}" for s in setting.sparsities]
    last = sp[-1]
    t = Table("methods", [
        Column("method", "Method", text=True), Column("rank", "Rank", "rank by curve area among "
                                                       "rows measured at every sparsity"),
        Column("version", "Version", text=True),
        Column("area", "Curve area", "area under accuracy vs sparsity (%), trapezoid over the "
               "measured sparsities / their span [95% interval over seeds]", interval=True),
        Column("auc_area", "AUC area", "the same area under AUC vs sparsity (%)", interval=True),
        *[Column(f"acc_{s}", f"ACC@{s}", f"accuracy (%) at sparsity {s}", interval=True) for s in sp],
        *[Column(f"auc_{s}", f"AUC@{s}", f"AUC (%) at sparsity {s}", interval=True) for s in sp],
        Column("within", "≤1 pt up to", "largest sparsity within 1 point of the dense accuracy"),
        Column("preserved", "Expl. preserved", "explanation preserved: Spearman of dense vs pruned "
               "reference-LRP maps, mean over sparsities [95% interval]", interval=True),
        Column("collapsed", "Collapsed", "collapsed points (sparsity x seed)"),
        Column("macs", f"MACs@{last}", f"MACs per image at sparsity {last}", interval=True),
        Column("speedup", f"Speed-up@{last}", f"measured speed-up at batch 64 at sparsity {last}",
               interval=True),
        Column("score_s", "Scoring (s)", "time to compute the method's scores", interval=True)],
        download=f"data/settings/{setting.key.slug}-methods")
    for r in setting.rows:
        label = names[r.method, r.version]
        by_s = {p.sparsity: p for p in r.points}
        t.add([_method_cell(label, "../", styles[label]),
               plain("—" if r.rank is None else f"{r.rank:g}", r.rank,
                     "unranked: not measured at every sparsity" if r.rank is None else ""),
               plain(r.version, r.version),
               num(r.area, links=False), num(r.auc_area, links=False),  # the row links its records
               *[num(by_s[s].acc if s in by_s else None, root="../") for s in setting.sparsities],
               *[num(by_s[s].auc if s in by_s else None, root="../") for s in setting.sparsities],
               _within(r), num(r.preserved, g2, links=False), _collapsed(r),
               num(r.points[-1].macs, si, "../"), _speedup(r.points[-1], "../"),
               num(r.points[-1].score_seconds, g3, "../")],
              anchor=f"row-{anchor(label)}")
    return t


POINT_COLUMNS = [
    Column("method", "Method", text=True), Column("sparsity", "Sparsity"),
    Column("acc", "ACC", "accuracy after recovery (%)", interval=True),
    Column("auc", "AUC", "AUC after recovery (%)", interval=True),
    Column("bal_acc", "Bal. ACC", "balanced accuracy (%)", interval=True),
    Column("collapsed", "Collapsed", "seeds whose balanced accuracy is within 0.02 of chance"),
    Column("macs", "MACs", interval=True), Column("params", "Params", interval=True),
    Column("mac_reduction", "MAC reduction", "dense / pruned MACs: theoretical, not a measured "
           "speed", interval=True),
    Column("speedup", "Measured speed-up", "measured CPU latency ratio dense/pruned at batch 64, "
           "interleaved repeats, one thread", interval=True),
    Column("preserved", "Map Spearman", "Spearman of dense vs pruned reference-LRP maps", interval=True),
    Column("iou", "Top-10% IoU", "overlap of the top-10% pixels of dense and pruned maps", interval=True),
    Column("lat1", "Latency b1 (ms)", interval=True), Column("lat64", "Latency b64 (ms)", interval=True),
    Column("score_s", "Scoring (s)", interval=True),
    Column("pareto", "Pareto", "on the front of fewer MACs and higher accuracy", text=True),
    Column("records", "Records", "the records (one per seed) behind every number of this row",
           text=True),
]


def points_table(setting: Setting, names: dict, styles: dict[str, Style]) -> Table:
    """Every measured point; a row's numbers all come from the records its last cell links."""
    t = Table("points", POINT_COLUMNS, download=f"data/settings/{setting.key.slug}-points")
    for r in setting.rows:
        label = names[r.method, r.version]
        for p in r.points:
            def n(stat: Any, fmt: Any = pct) -> dict[str, Any]:
                return num(stat, fmt, "../", links=False)
            collapsed = "—" if p.collapsed is None else f"{p.collapsed}/{p.acc.n}"
            front = p.sparsity in r.pareto
            t.add([_method_cell(label, "../", styles[label]), plain(f"{p.sparsity:g}", p.sparsity),
                   n(p.acc), n(p.auc), n(p.bal_acc), plain(collapsed, p.collapsed),
                   n(p.macs, si), n(p.params, si), n(p.mac_reduction, g3), _speedup(p, "../", links=False),
                   n(p.preserved, g2), n(p.iou, g2), n(p.latency_b1, g3), n(p.latency_b64, g3),
                   n(p.score_seconds, g3), plain("yes" if front else "", "yes" if front else None),
                   records_cell(p.acc, "../")],
                  anchor=f"pt-{anchor(label)}-{p.sparsity:g}")
    return t


def records_cell(stat: Stat, root: str) -> dict[str, Any]:
    """A cell that only links the records (one per seed) behind its row."""
    return {**num(stat, root=root), "text": "", "title": "", "sort": " ".join(stat.cells),
            "value": " ".join(stat.cells), "lo": None, "hi": None}


def setting_context(setting: Setting, names: dict, styles: dict[str, Style],
                    absent: dict[str, list[str]]) -> tuple[dict[str, Any], list[Table]]:
    """Everything the setting page prints, and its tables (for their downloads); ``absent``
    names methods not applicable at this granularity and those applicable but not run here."""
    rows = [names[r.method, r.version] for r in setting.rows]
    dense = num(setting.dense, root="../")
    tables = [methods_table(setting, names, styles), points_table(setting, names, styles)]
    return {"title": setting_title(setting), "root": "../", "key": setting.key._asdict(),
            "dense": dense, "dense_auc": num(setting.dense_auc, root="../"),
            "macs_dense": si(setting.macs_dense),
            "dense_ms": None if setting.dense_latency_b64 is None else g3(setting.dense_latency_b64),
            "methods": tables[0].context("../"), "points": tables[1].context("../"),
            "plots": setting_plots(setting, names, styles), "legend_entries": legend(rows, styles),
            "not_applicable": ", ".join(absent.get("not_applicable", [])),
            "not_for_backbone": ", ".join(absent.get("not_for_backbone", [])),
            "not_run": ", ".join(absent.get("not_run", []))}, tables


# ---------------------------------------------------------------- dataset and method tables

def results_table(pairs: list[tuple[Setting, Row]], names: dict, table_id: str, download: str,
                  with_dataset: bool, with_method: bool, root: str = "../") -> Table:
    """One row per (setting, method): rank, areas, accuracy per sparsity and operating figures.
    Its numbers reach their records through the first cell, which links the method's row on
    the setting page (whose numbers link each seed's record)."""
    sparsities = sorted({s for setting, _ in pairs for s in setting.sparsities})
    sp = [f"{s:g}" for s in sparsities]
    sizes = _mixed_sizes(s for s, _ in pairs)
    t = Table(table_id, [
        Column("setting", "Setting", "follow it for this row's records, seed by seed", text=True),
        Column("method", "Method", text=True) if with_method else Column("version", "Version", text=True),
        Column("rank", "Rank", "rank in its setting by curve area"),
        Column("area", "Curve area", "area under accuracy vs sparsity (%) [95% interval]", interval=True),
        Column("auc_area", "AUC area", "area under AUC vs sparsity (%) [95% interval]", interval=True),
        *[Column(f"acc_{s}", f"ACC@{s}", f"accuracy (%) at sparsity {s}", interval=True) for s in sp],
        Column("within", "≤1 pt up to", "largest sparsity within 1 point of the dense accuracy"),
        Column("preserved", "Expl. preserved", "explanation preserved: Spearman of dense vs pruned "
               "LRP maps, mean over sparsities", interval=True),
        Column("collapsed", "Collapsed", "collapsed points (sparsity x seed)"),
        Column("speedup", "Speed-up (largest sparsity)", "measured speed-up at batch 64 at the "
               "setting's largest sparsity", interval=True)],
        download=download, filters=[a for a in AXES if with_dataset or a != "dataset"]
        + (["method"] if with_method else []),
        export=("slug", "dataset", "size", "backbone", "granularity", "scope", "recovery"))
    for s, r in pairs:
        label = names[r.method, r.version]
        by_s = {p.sparsity: p for p in r.points}

        def n(stat: Any, fmt: Any = pct) -> dict[str, Any]:
            return num(stat, fmt, root, links=False)
        t.add([label_cell(s, setting_href(s, root, label), with_dataset, sizes),
               *([_method_cell(label, root)] if with_method else [plain(r.version, r.version)]),
               plain("—" if r.rank is None else f"{r.rank:g}", r.rank),
               n(r.area), n(r.auc_area), *[n(by_s[x].acc if x in by_s else None) for x in sparsities],
               _within(r), n(r.preserved, g2), _collapsed(r), _speedup(r.points[-1], root, links=False)],
              {**axes_of(s), "method": label}, export={"slug": s.key.slug, "size": s.key.size, **axes_of(s)})
    return t


def dataset_context(dataset: str, settings: list[Setting],
                    names: dict) -> tuple[dict[str, Any], list[Table]]:
    """A dataset's page: every method in every setting of it, filterable."""
    mine = [s for s in settings if s.key.dataset == dataset]
    pairs = [(s, r) for s in mine for r in s.rows]
    table = results_table(pairs, names, "results", f"data/datasets/{dataset}", with_dataset=False,
                          with_method=True)
    return {"title": f"dataset {dataset}", "root": "../", "dataset": dataset,
            "synthetic": any(s.synthetic for s in mine), "settings": len(mine),
            "results": table.context("../")}, [table]


# ---------------------------------------------------------------- index and metrics pages

def index_context(settings: list[Setting], comparisons: list[Comparison], names: dict,
                  styles: dict[str, Style], figures: dict[str, str], methods: list[dict[str, Any]],
                  failed: int) -> tuple[dict[str, Any], list[Table]]:
    """The settings at a glance, the per-granularity comparisons, datasets and methods."""
    by_label = {v: k[0] for k, v in names.items()}
    glance = settings_table(settings, names)
    ranks = [ranks_table(c, by_label, styles) for c in comparisons]
    comps = [comparison_context(c, by_label, figures.get(c.granularity), t)
             for c, t in zip(comparisons, ranks)]
    tables = [glance, *ranks]
    datasets = sorted({s.key.dataset for s in settings})
    return {"title": "XPrune Bench leaderboard", "root": "", "glance": glance.context(""),
            "comparisons": comps, "methods": methods, "failed": failed,
            "records": sum(len(r.area.cells) for s in settings for r in s.rows),
            "datasets": [{"name": d, "href": f"datasets/{d}.html",
                          "settings": sum(1 for s in settings if s.key.dataset == d)}
                         for d in datasets]}, tables


def metrics_context() -> dict[str, Any]:
    """The metrics page: its constants come from the code that applies them."""
    from .stats import ALPHA
    from .summary import LRP_EXPLAINERS

    return {"title": "What every number means", "root": "", "one_point": f"{100 * ONE_POINT:g}",
            "alpha": f"{ALPHA:g}", "level": f"{100 * (1 - ALPHA):g}",
            "cnn_explainer": LRP_EXPLAINERS[0], "transformer_explainer": LRP_EXPLAINERS[1]}
