"""Page contexts of the leaderboard's overview pages (index, setting, dataset, metrics): plain
dicts and :class:`bench.site.tables.Table` objects with every number formatted, sort keys, tooltips,
record links and plot geometry precomputed, so the templates only loop and print.

Anchors tie numbers to records: a setting page has ``row-<method>`` on each method's row
(whose numbers link their records per seed) and ``pt-<method>-<sparsity>`` on each row of its
table of points (whose Records cell links them); summary views elsewhere link there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.core.spec import PROTOCOL
from bench.results.summary import (
    METRIC_NAMES,
    METRIC_SHORT,
    METRICS,
    ONE_POINT,
    PRIMARY,
    Comparison,
    Point,
    Row,
    Setting,
    Stat,
)
from bench.site.numbers import anchor, f2, g2, num, pct, plain, record_group, si, si_fixed
from bench.site.plots import highlighted, setting_plots
from bench.site.svg import Style, legend, symbols
from bench.site.tables import AXES, Column, Table

SUFFIX = {"bal_acc": "", "auc": ".auc", "acc": ".acc"}  # page variants: index.html, index.auc.html


def html(path: str, metric: str) -> str:
    """The page of ``path`` (no extension) in the variant of ``metric`` (the primary one has no
    suffix, so the plain address opens on it)."""
    return f"{path}{SUFFIX[metric]}.html"


def switcher(stem: str, metric: str) -> list[dict[str, Any]]:
    """The metric switch of a page: links to its variants (same folder), the current marked."""
    return [{"label": METRIC_NAMES[m], "href": html(stem, m), "current": m == metric,
             "primary": m == PRIMARY} for m in METRICS]


def span_text(s: Setting) -> str:
    """The sparsity range a setting's curve areas cover, as printed next to them."""
    lo, hi = s.span
    return f"{lo:g}–{hi:g}"


def floor_text(s: Setting) -> str:
    """The constant-model references of a setting, as a tooltip."""
    chance = "—" if s.chance is None else pct(s.chance)
    majority = "—" if s.majority is None else pct(s.majority)
    return f"chance (1/K) {chance}%, majority class {majority}%"


def setting_href(s: Setting, root: str, label: str = "", sparsity: float | None = None) -> str:
    """A setting page, or its row of a method, or its row of one point."""
    page = f"{root}{html(f'settings/{s.key.slug}', s.metric)}"
    if not label:
        return page
    if sparsity is not None:  # the table of points is on the primary metric's page only
        return f"{root}{html(f'settings/{s.key.slug}', PRIMARY)}#pt-{anchor(label)}-{sparsity:g}"
    return page + f"#row-{anchor(label)}"


def setting_title(setting: Setting) -> str:
    """A human-readable name for a setting."""
    k = setting.key
    synthetic = " (synthetic data)" if setting.synthetic else ""
    return (f"{k.dataset}{synthetic} {k.size}px · {k.backbone} · {k.granularity} · {k.scope} "
            f"scope · recovery {k.recovery}{older_protocol(setting)}")


def older_protocol(setting: Setting) -> str:
    """`` · protocol N`` for a setting computed by an older engine protocol (its own baselines
    and kernels, not yet re-run), else nothing."""
    return f" · protocol {setting.key.protocol}" if setting.key.protocol != PROTOCOL else ""


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
            "sub": f"{k.granularity} · {k.scope} · {k.recovery}{older_protocol(s)}"}


def _mixed_sizes(settings: Iterable[Setting]) -> bool:
    return len({s.key.size for s in settings}) > 1


def operating_point(row: Row) -> Point | None:
    """The largest sparsity whose mean accuracy stays within one point of the dense model."""
    return next((p for p in row.points if p.sparsity == row.within_one_point), None)


def _speedup(p: Point | None, root: str, href: str = "", links: bool = True) -> dict[str, Any]:
    """Measured batch-64 speed-up, marked when its interval contains 1 in most cells."""
    cell = num(p.speedup_b64 if p else None, f2, root, href=href, links=links)
    if p is not None and p.within_noise is not None and p.within_noise >= 0.5:
        cell = {**cell, "ci": (cell["ci"] + " noise").strip(),
                "title": "within noise: the speed-up's interval contains 1 in most of its cells"}
    return cell


def _within(row: Row, href: str = "") -> dict[str, Any]:
    within = row.within_one_point
    return plain("none" if within is None else f"{within:g}", within, "", href)


def _collapsed(row: Row, href: str = "") -> dict[str, Any]:
    return plain("—" if row.collapsed is None else str(row.collapsed), row.collapsed, "", href)


def _method_cell(label: str, root: str, style: Style | None = None,
                 metric: str = PRIMARY) -> dict[str, Any]:
    cell = plain(label, label, "", f"{root}{html('methods/' + label.split(' v')[0], metric)}")
    return {**cell, "swatch": None if style is None else {"symbol": style.symbol}}


# ---------------------------------------------------------------- index

def _tied(s: Setting, names: dict) -> tuple[str, str]:
    """The leader text of a setting and its tooltip: one method where the runner-up is
    separated, else ``tied: A, B, C`` with the criterion that could not separate them."""
    leaders = s.leaders
    if not leaders:
        return "—", ""
    if len(leaders) == 1:
        return names[leaders[0].method, leaders[0].version], (
            "separated: no other method's curve-area 95% interval over seeds overlaps its own")
    return "tied: " + ", ".join(names[r.method, r.version] for r in leaders), (
        "not separated: these methods' curve-area 95% intervals over seeds overlap the first's"
        if s.best[0].area.ci is not None else "not separated: one seed gives no interval")


def _floor_cell(value: float | None, href: str) -> dict[str, Any]:
    """A constant-model reference (chance, majority share); it links the setting's dense model,
    whose records carry it."""
    return plain("—" if value is None else pct(value), value,
                 "" if value is not None else "not known (needs the dataset file or a binary task)",
                 href if value is not None else "")


def settings_table(settings: list[Setting], names: dict) -> Table:
    """Per setting, the leader(s) at a glance under the settings' metric; every number links
    its setting page's rows."""
    metric = settings[0].metric if settings else PRIMARY
    short = METRIC_SHORT[metric]
    t = Table(f"settings-{metric}", [
        Column("setting", "Setting", "dataset, backbone; granularity · scope · recovery", text=True),
        Column("best", "Best method", "the method with the largest curve area when no other "
               "method's 95% interval overlaps it; else 'tied:' and every method not separated "
               "from the first", text=True),
        Column("area", "Curve area", f"the first method's mean {METRIC_NAMES[metric]} over the "
               "setting's sparsity range (trapezoid / span, %), mean over seeds [95% interval]",
               interval=True),
        Column("within", "≤1 pt up to", f"largest sparsity at which the first method's "
               f"{METRIC_NAMES[metric]} is within 1 point of the dense model (its operating point)"),
        Column("dense", f"Dense {short}", f"the unpruned model's test {METRIC_NAMES[metric]} (%), "
               "mean over seeds", interval=True),
        Column("chance", "Chance", "1/K: the balanced accuracy of any constant model (%)", more=True),
        Column("majority", "Majority", "the test set's majority-class share: the ACC of a model "
               "that always answers that class (%)", more=True),
        Column("range", "Area range", "the sparsities the curve area covers", text=True, more=True),
        Column("mac_reduction", "MAC reduction", "dense / pruned MACs (×) at the operating point "
               "(theoretical)", interval=True, more=True),
        Column("speedup", "Speed-up", "measured speed-up (×): CPU latency ratio at batch 64 at the "
               "operating point [95% interval]", interval=True, more=True),
        Column("preserved", "Expl. preserved", "explanation preserved: Spearman of dense vs pruned "
               "LRP maps at the operating point [95% interval]; 1 = same pixel ranking",
               interval=True, more=True),
        Column("collapsed", "Collapsed", "collapsed points (sparsity x seed) of the first method",
               more=True),
    ], download=f"data/settings{SUFFIX[metric]}", filters=list(AXES),
        export=("slug", "dataset", "size", "backbone", "granularity", "scope", "recovery", "seeds",
                "metric", "tied", "area_bal_acc", "area_auc", "area_acc"))
    for s in settings:
        best = s.best[0] if s.best else None
        label = names[best.method, best.version] if best else ""
        op = operating_point(best) if best else None
        at = setting_href(s, "", label, op.sparsity) if op else ""
        none = plain("—", None, "no sparsity within 1 point of the dense model")
        seeds = best.area.n if best else 0
        text, why = _tied(s, names)
        tied = text[len("tied: "):] if text.startswith("tied: ") else ""
        members = tied.split(", ") if tied else []
        shown = (f"tied ({len(members)}): {', '.join(members[:3])}"
                 + (f" +{len(members) - 3} more" if len(members) > 3 else "")) if tied else text
        why = f"{why}: {tied}" if tied else why
        area = num(best.area if best else None, root="", href=setting_href(s, "", label))
        if best and s.at_floor(best.area.mean):
            area = {**area, "ci": (area["ci"] + " collapsed").strip(),
                    "title": f"at or below a constant model ({floor_text(s)}): collapsed, not a result"}
        t.add([{**label_cell(s, setting_href(s, ""), size=_mixed_sizes(settings)),
                "sub": f"{s.key.granularity} · {s.key.scope} · {s.key.recovery} · {seeds} seed(s)"
                       f"{older_protocol(s)}"},
               {**plain(shown, text, why, html(f"methods/{best.method}", s.metric)
                        if best and not tied else ""), "sub": ""},
               area,
               _within(best, setting_href(s, "", label)) if best else plain("—"),
               num(s.dense, root="", href=setting_href(s, "") + "#dense"),
               _floor_cell(s.chance, setting_href(s, "") + "#dense"),
               _floor_cell(s.majority, setting_href(s, "") + "#dense"),
               plain(span_text(s), span_text(s)),
               num(op.mac_reduction, f2, "", href=at) if op else none,
               _speedup(op, "", at) if op else none,
               num(op.preserved, g2, "", href=at) if op else none,
               _collapsed(best, setting_href(s, "", label)) if best else plain("—")],
              axes_of(s), export={"slug": s.key.slug, "size": s.key.size, "seeds": seeds,
                                  "metric": metric, "tied": tied, **axes_of(s),
                                  **{f"area_{m}": (best.areas[m].mean if best and best.areas.get(m)
                                                   else None) for m in METRICS}})
    return t


def _versus(c: Comparison, name: str, reference: str, href: str) -> dict[str, Any]:
    """A method's paired Wilcoxon test against a reference, as a cell linking the method's
    results in the compared settings."""
    test = c.against.get(reference, {}).get(name)
    if test is None:
        return plain("—", None, "the reference itself, or not compared")
    p = "n/a" if test.p_holm is None else f"{test.p_holm:.2g}"
    return plain(f"{100 * test.mean_diff:+.1f} ({test.verdict}, p {p})", test.mean_diff,
                 f"mean curve-area difference {100 * test.mean_diff:+.2f} points; higher in "
                 f"{100 * test.share_higher:.0f}% of {test.n} settings; Wilcoxon signed-rank, "
                 f"Holm-adjusted p = {p}", href)


def ranks_table(c: Comparison, names_by_label: dict[str, str],
                styles: dict[str, Style] | None = None) -> Table:
    """Mean ranks of one comparison, overall and per dataset, and the paired tests against
    random and magnitude; each rank links the method page filtered to the settings behind it."""
    sig = c.significance
    datasets = sorted({d for per in c.per_dataset.values() for d in per})
    t = Table(f"ranks-{c.slug}-{c.metric}", [
        Column("method", "Method", text=True),
        Column("mean_rank", "Mean rank", "mean rank over the compared settings (1 = best), and "
               "the method's place among the compared methods"),
        Column("vs_random", "vs random", "mean curve-area difference to random (points), the "
               "paired Wilcoxon verdict and its Holm-adjusted p over the same settings"),
        Column("vs_magnitude", "vs magnitude", "the same against magnitude"),
        *[Column(f"rank_{d}", d, f"mean rank over the compared settings of {d}", more=True)
          for d in datasets],
        Column("beats", "Ranks better than (significant)", "methods the Nemenyi test separates "
               "from it (after a significant Friedman test)", text=True, more=True)],
        download=f"data/ranks-{c.slug}{SUFFIX[c.metric]}", export=("metric",))
    for place, name in enumerate(sig.methods, 1):
        page = (f"{html('methods/' + names_by_label[name], c.metric)}"
                f"#granularity={c.granularity}")
        beats = [m for m in sig.methods if sig.mean_ranks[m] > sig.mean_ranks[name] and sig.differs(name, m)]
        t.add([_method_cell(name, "", (styles or {}).get(name), c.metric),
               {**plain(f"{sig.mean_ranks[name]:.2f}", sig.mean_ranks[name], "", page),
                "sub": f"{place} of {len(sig.methods)}"},
               _versus(c, name, "random", page), _versus(c, name, "magnitude", page),
               *[plain(f"{c.per_dataset[name][d]:.2f}", c.per_dataset[name][d], "",
                       f"{page}&dataset={d}") if d in c.per_dataset.get(name, {}) else plain("—")
                 for d in datasets],
               plain(", ".join(beats) or "—", ", ".join(beats))], export={"metric": c.metric})
    return t


def friedman_text(c: Comparison) -> str:
    """The Friedman / Nemenyi result of a comparison in one sentence."""
    sig = c.significance
    return ("Friedman test not applicable (fewer than 3 methods or 2 settings)"
            if sig.p_value is None else
            f"Friedman χ² = {sig.statistic:.2f}, p = {sig.p_value:.2g} over {sig.blocks} settings; "
            f"Nemenyi critical difference of mean ranks {sig.critical_difference:.2f} (α = {sig.alpha})")


def verdict(c: Comparison) -> dict[str, Any]:
    """What one comparison answers: the ranking, each method against random and magnitude
    (Holm-adjusted Wilcoxon), and which pairs the Nemenyi test separates."""
    sig = c.significance
    ranking = ", ".join(f"{m} {sig.mean_ranks[m]:.2f}" for m in sig.methods)
    against = []
    for ref in ("random", "magnitude"):
        tests = c.against.get(ref)
        if not tests:
            continue
        groups = {v: [m for m in sig.methods if m in tests and tests[m].verdict == v]
                  for v in ("higher", "lower", "not separated")}
        untested = all(t.p_value is None for t in tests.values())
        against.append({"reference": ref, "untested": untested and
                        f"no test: {sig.blocks} settings (the Wilcoxon signed-rank test needs 6)",
                        **{k.replace(" ", "_"): ", ".join(v) or "none" for k, v in groups.items()}})
    pairs = [(a, b) for i, a in enumerate(sig.methods) for b in sig.methods[i + 1:]
             if sig.differs(a, b)]
    return {"title": f"{c.granularity} pruning, {c.architecture} backbones",
            "ranking": ranking, "test": friedman_text(c), "against": against,
            "separated": "; ".join(f"{a} > {b}" for a, b in pairs) if pairs else
            "no pair of methods is separated by the Nemenyi test",
            "pairs": len(pairs), "blocks": sig.blocks}


def comparison_context(c: Comparison, names_by_label: dict[str, str], figure: str | None,
                       table: Table) -> dict:
    """One comparison's Friedman / Nemenyi details, as the index prints them."""
    sig = c.significance
    return {"granularity": c.granularity, "architecture": c.architecture,
            "test": friedman_text(c), "significant": sig.significant,
            "table": table.context(""), "figure": figure,
            "excluded": len(c.excluded), "left_out": ", ".join(c.left_out)}


# ---------------------------------------------------------------- setting page

def _curve_columns(metric: str, sparsities: Iterable[str]) -> list[Column]:
    """The metric at each sparsity, then the largest sparsity within 1 point of dense."""
    short = METRIC_SHORT[metric]
    return [*[Column(f"{metric}_{s}", f"{short}@{s}", f"{METRIC_NAMES[metric]} (%) at sparsity {s}",
                     interval=True) for s in sparsities],
            Column("within", "≤1 pt up to", f"largest sparsity within 1 point of the dense "
                   f"{METRIC_NAMES[metric]}")]


def _area_columns(metric: str, what: str = "") -> list[Column]:
    """The curve-area columns: the ranking metric's first (a key column), then the other two
    (behind the column chooser)."""
    cols = [Column("area", "Curve area", f"area under {METRIC_NAMES[metric]} vs sparsity (%): "
                   "trapezoid over the setting's sparsities / their span (see Area range) "
                   "[95% interval over seeds]", interval=True)]
    return cols + [Column(f"area_{m}", f"{METRIC_SHORT[m]} area", f"the same area under "
                          f"{METRIC_NAMES[m]} (%)", interval=True, more=True)
                   for m in METRICS if m != metric]


def rank_text(rank: float | None, of: int) -> str:
    """A rank among the ranked rows of a setting: ``3 of 12`` (ties share a mean rank)."""
    return "—" if rank is None else f"{rank:g} of {of}"


def _area_cells(s: Setting, r: Row, root: str) -> list[dict[str, Any]]:
    """A row's curve areas (the metric's first), the first marked when at the constant-model floor."""
    first = num(r.area, root=root, links=False)
    if r.area is not None and s.at_floor(r.area.mean):
        first = {**first, "ci": (first["ci"] + " collapsed").strip(),
                 "title": f"at or below a constant model ({floor_text(s)}): collapsed, not a result"}
    return [first] + [num(r.areas.get(m), root=root, links=False) for m in METRICS if m != s.metric]


def methods_table(setting: Setting, names: dict, styles: dict[str, Style]) -> Table:
    """One row per method: rank, curve areas, the metric per sparsity, operating figures.
    Numbers of one sparsity link their records per seed; numbers derived from the whole curve
    (areas, preservation) come from exactly the records the row links."""
    metric = setting.metric
    sp = [f"{s:g}" for s in setting.sparsities]
    last = sp[-1]
    ranked = sum(1 for r in setting.rows if r.rank is not None)
    t = Table(f"methods-{metric}", [
        Column("method", "Method", text=True), Column("rank", "Rank", f"rank by curve area of "
                                                       f"{METRIC_NAMES[metric]} among the rows "
                                                       "measured at every sparsity (1 = best)"),
        *_area_columns(metric)[:1],
        *_curve_columns(metric, sp),
        Column("version", "Version", text=True, more=True),
        *_area_columns(metric)[1:],
        Column("preserved", "Expl. preserved", "explanation preserved: Spearman of dense vs pruned "
               "reference-LRP maps, mean over sparsities [95% interval]", interval=True, more=True),
        Column("collapsed", "Collapsed", "collapsed points (sparsity x seed)", more=True),
        Column("macs", f"MACs@{last}", f"MACs per image at sparsity {last}", interval=True, more=True),
        Column("speedup", f"Speed-up@{last}", f"measured speed-up at batch 64 at sparsity {last}",
               interval=True, more=True),
        Column("score_s", "Scoring (s)", "time to compute the method's scores", interval=True,
               more=True)],
        download=f"data/settings/{setting.key.slug}-methods{SUFFIX[metric]}")
    for r in setting.rows:
        label = names[r.method, r.version]
        by_s = {p.sparsity: p for p in r.points}
        areas = _area_cells(setting, r, "../")
        # the area links the page of the row's records (exactly the records behind it); a
        # sparsity's number links its row of the table of points, whose Records cell links them
        areas[0] = {**areas[0], "href": f"../{record_group(label, setting.key.slug)}"}
        points = f"{html(setting.key.slug, PRIMARY)}#pt-{anchor(label)}-"
        last_point = f"{points}{r.points[-1].sparsity:g}"
        t.add([_method_cell(label, "../", styles[label], metric),
               plain(rank_text(r.rank, ranked), r.rank,
                     "unranked: not measured at every sparsity" if r.rank is None else ""),
               areas[0],
               *[num(by_s[s].value(metric) if s in by_s else None, root="../",
                     href=f"{points}{s:g}" if s in by_s else "")
                 for s in setting.sparsities],
               _within(r), plain(r.version, r.version), *areas[1:],
               num(r.preserved, g2, links=False), _collapsed(r),
               num(r.points[-1].macs, si_fixed(setting.macs_dense), "../", href=last_point),
               _speedup(r.points[-1], "../", last_point),
               num(r.points[-1].score_seconds, f2, "../", href=last_point)],
              anchor=f"row-{anchor(label)}")
    return t


POINT_COLUMNS = [
    Column("method", "Method", text=True), Column("sparsity", "Sparsity"),
    Column("bal_acc", "Bal. ACC", "balanced accuracy after recovery (%)", interval=True),
    Column("acc", "ACC", "accuracy after recovery (%)", interval=True),
    Column("auc", "AUC", "AUC after recovery (%)", interval=True),
    Column("mac_reduction", "MAC reduction", "dense / pruned MACs: theoretical, not a measured "
           "speed", interval=True),
    Column("speedup", "Measured speed-up", "measured CPU latency ratio dense/pruned at batch 64, "
           "interleaved repeats, one thread", interval=True),
    Column("preserved", "Map Spearman", "Spearman of dense vs pruned reference-LRP maps", interval=True),
    Column("records", "Records", "the records (one per seed) behind every number of this row",
           text=True),
    Column("collapsed", "Collapsed", "seeds whose balanced accuracy is within 0.02 of chance",
           more=True),
    Column("macs", "MACs", "multiply-accumulates per image", interval=True, more=True),
    Column("params", "Params", "parameters", interval=True, more=True),
    Column("iou", "Top-10% IoU", "overlap of the top-10% pixels of dense and pruned maps",
           interval=True, more=True),
    Column("lat1", "Latency b1 (ms)", "measured CPU latency at batch 1", interval=True, more=True),
    Column("lat64", "Latency b64 (ms)", "measured CPU latency at batch 64", interval=True, more=True),
    Column("score_s", "Scoring (s)", "time to compute the method's scores", interval=True, more=True),
    Column("pareto", "Pareto", "on the front of fewer MACs and a higher balanced accuracy",
           text=True, more=True),
]


def points_table(setting: Setting, names: dict, styles: dict[str, Style]) -> Table:
    """Every measured point (the same under every metric, so only the primary metric's page
    and download carry it); a row's numbers all come from the records its Records cell links."""
    t = Table("point-table", POINT_COLUMNS, download=f"data/settings/{setting.key.slug}-points")
    macs = si_fixed(setting.macs_dense)  # one unit and two decimals per column
    params = si_fixed(max((p.params.mean for r in setting.rows for p in r.points), default=0.0))
    for r in setting.rows:
        label = names[r.method, r.version]
        for p in r.points:
            def n(stat: Any, fmt: Any = pct) -> dict[str, Any]:
                return num(stat, fmt, "../", links=False)
            collapsed = "—" if p.collapsed is None else f"{p.collapsed}/{p.acc.n}"
            front = p.sparsity in r.pareto
            t.add([_method_cell(label, "../", styles[label], setting.metric),
                   plain(f"{p.sparsity:g}", p.sparsity),
                   n(p.bal_acc), n(p.acc), n(p.auc), n(p.mac_reduction, f2),
                   _speedup(p, "../", links=False), n(p.preserved, g2), records_cell(p.acc, "../"),
                   plain(collapsed, p.collapsed), n(p.macs, macs), n(p.params, params),
                   n(p.iou, g2), n(p.latency_b1, f2), n(p.latency_b64, f2),
                   n(p.score_seconds, f2), plain("yes" if front else "", "yes" if front else None)],
                  anchor=f"pt-{anchor(label)}-{p.sparsity:g}")
    return t


def records_cell(stat: Stat, root: str) -> dict[str, Any]:
    """A cell that only links the records (one per seed) behind its row."""
    return {**num(stat, root=root), "text": "", "title": "", "sort": " ".join(stat.cells),
            "value": " ".join(stat.cells), "lo": None, "hi": None}


def setting_context(setting: Setting, names: dict, styles: dict[str, Style],
                    absent: dict[str, list[str]]) -> tuple[dict[str, Any], list[Table]]:
    """Everything the setting page prints, and its tables (for their downloads); ``absent``
    names methods not applicable at this granularity and those applicable but not run here.
    The table of points is metric-independent: the primary metric's page carries it, the
    other variants link there."""
    rows = [names[r.method, r.version] for r in setting.rows]
    primary = setting.metric == PRIMARY
    tables = [methods_table(setting, names, styles)]
    if primary:
        tables.append(points_table(setting, names, styles))
    points_page = "" if primary else html(setting.key.slug, PRIMARY).split("/")[-1]
    shown = highlighted(setting, names)
    return {"title": setting_title(setting), "root": "../", "key": setting.key._asdict(),
            "metric": METRIC_NAMES[setting.metric], "span": span_text(setting),
            "switch": switcher(setting.key.slug, setting.metric),
            "denses": [{"name": METRIC_NAMES[m], "cell": num(setting.denses.get(m), root="../")}
                       for m in METRICS],
            "chance": "not known" if setting.chance is None else f"{pct(setting.chance)}%",
            "majority": ("not known" if setting.majority is None
                         else f"{pct(setting.majority)}% of the test set"),
            "macs_dense": si(setting.macs_dense),
            "dense_ms": None if setting.dense_latency_b64 is None else f2(setting.dense_latency_b64),
            "methods": tables[0].context("../"),
            "points": tables[1].context("../") if primary else None,
            "points_page": f"{points_page}#points", "primary_name": METRIC_NAMES[PRIMARY],
            "plots": setting_plots(setting, names, styles, points_page)[:None if primary else 1],
            "legend_entries": legend(rows, styles, shown), "highlighted": ", ".join(shown),
            "symbols": symbols({n: styles[n] for n in rows}),
            "not_applicable": ", ".join(absent.get("not_applicable", [])),
            "not_for_backbone": ", ".join(absent.get("not_for_backbone", [])),
            "not_run": ", ".join(absent.get("not_run", []))}, tables


# ---------------------------------------------------------------- dataset and method tables

def results_table(pairs: list[tuple[Setting, Row]], names: dict, table_id: str, download: str,
                  with_dataset: bool, with_method: bool, root: str = "../",
                  metric: str = PRIMARY) -> Table:
    """One row per (setting, method): rank, areas, the metric per sparsity and operating figures.
    Its numbers reach their records through the first cell, which links the method's row on
    the setting page (whose numbers link each seed's record)."""
    sparsities = sorted({s for setting, _ in pairs for s in setting.sparsities})
    sp = [f"{s:g}" for s in sparsities]
    sizes = _mixed_sizes(s for s, _ in pairs)
    t = Table(f"{table_id}-{metric}", [
        Column("setting", "Setting", "follow it for this row's records, seed by seed", text=True),
        Column("method", "Method", text=True) if with_method else Column("version", "Version", text=True),
        Column("rank", "Rank", f"rank in its setting by curve area of {METRIC_NAMES[metric]} "
               "(1 = best) of the methods ranked there"),
        *_area_columns(metric)[:1],
        *_curve_columns(metric, sp),
        *_area_columns(metric)[1:],
        Column("range", "Area range", "the sparsities the curve areas cover", text=True, more=True),
        Column("preserved", "Expl. preserved", "explanation preserved: Spearman of dense vs pruned "
               "LRP maps, mean over sparsities", interval=True, more=True),
        Column("collapsed", "Collapsed", "collapsed points (sparsity x seed)", more=True),
        Column("speedup", "Speed-up (largest sparsity)", "measured speed-up at batch 64 at the "
               "setting's largest sparsity", interval=True, more=True)],
        download=f"{download}{SUFFIX[metric]}", filters=[a for a in AXES if with_dataset or a != "dataset"]
        + (["method"] if with_method else []),
        export=("slug", "dataset", "size", "backbone", "granularity", "scope", "recovery", "metric"))
    for s, r in pairs:
        label = names[r.method, r.version]
        by_s = {p.sparsity: p for p in r.points}
        areas = _area_cells(s, r, root)

        def n(stat: Any, fmt: Any = pct) -> dict[str, Any]:
            return num(stat, fmt, root, links=False)
        t.add([label_cell(s, setting_href(s, root, label), with_dataset, sizes),
               *([_method_cell(label, root, None, metric)] if with_method
                 else [plain(r.version, r.version)]),
               plain(rank_text(r.rank, sum(1 for x in s.rows if x.rank is not None)), r.rank),
               areas[0],
               *[n(by_s[x].value(metric) if x in by_s else None) for x in sparsities],
               _within(r), *areas[1:], plain(span_text(s), span_text(s)),
               n(r.preserved, g2), _collapsed(r), _speedup(r.points[-1], root, links=False)],
              {**axes_of(s), "method": label},
              export={"slug": s.key.slug, "size": s.key.size, "metric": metric, **axes_of(s)})
    return t


def headline(settings: list[Setting]) -> Setting | None:
    """The setting a dataset page plots: the one with the most methods, then the most seeds
    (ties: the first in sorted order of slugs)."""
    return min(settings, key=lambda s: (-len(s.rows), -max((r.area.n if r.area else 0 for r in s.rows), default=0),
                                        s.key.slug), default=None)


def card_rows(card: dict[str, Any] | None, settings: list[Setting]) -> list[tuple[str, str]]:
    """A dataset's card as the page prints it: task and classes, split sizes (test size first),
    the test set's majority-class share, licence, source and citation; "" fields left out."""
    if not card:
        return [("card", "not available (datasets/<name>.yaml is in the repository)")]
    splits = card.get("splits") or {}
    majority = sorted({pct(s.majority) for s in settings if s.majority is not None})
    rows = [("task", f"{card.get('task', '—')}, {len(card.get('labels') or {})} classes"),
            ("test images", f"{splits['test']:,}" if "test" in splits else "—"),
            ("train / validation images", f"{splits.get('train', 0):,} / {splits.get('val', 0):,}"),
            ("majority-class share of the test set",
             ", ".join(f"{m}%" for m in majority) if majority else "not known"),
            ("licence", str(card.get("licence", "—"))),
            ("source", str(card.get("source", "—"))),
            ("citation", str(card.get("citation", "—")))]
    return rows


def dataset_context(dataset: str, settings: list[Setting], names: dict,
                    styles: dict[str, Style] | None = None,
                    card: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[Table]]:
    """A dataset's page: its card, the plot of its headline setting, and every method in every
    setting of it, filterable."""
    mine = [s for s in settings if s.key.dataset == dataset]
    metric = mine[0].metric if mine else PRIMARY
    pairs = [(s, r) for s in mine for r in s.rows]
    table = results_table(pairs, names, "results", f"data/datasets/{dataset}", with_dataset=False,
                          with_method=True, metric=metric)
    top = headline(mine)
    plot = None
    if top is not None and styles is not None:
        rows = [names[r.method, r.version] for r in top.rows]
        figure = setting_plots(top, names, styles, f"../{html(f'settings/{top.key.slug}', PRIMARY)}")[:1]
        plot = {"figures": figure, "title": setting_title(top), "href": setting_href(top, "../"),
                "legend_entries": legend(rows, styles, highlighted(top, names))}
    return {"title": f"dataset {dataset}", "root": "../", "dataset": dataset,
            "metric": METRIC_NAMES[metric], "switch": switcher(dataset, metric),
            "synthetic": any(s.synthetic for s in mine), "settings": len(mine),
            "card": card_rows(card, mine), "overview": plot,
            "symbols": symbols({n: styles[n] for n in {names[r.method, r.version] for r in top.rows}})
            if plot else [],
            "results": table.context("../")}, [table]


# ---------------------------------------------------------------- index and metrics pages

def index_context(settings: list[Setting], comparisons: list[Comparison], names: dict,
                  styles: dict[str, Style], figures: dict[str, str], methods: list[dict[str, Any]],
                  failed: int) -> tuple[dict[str, Any], list[Table]]:
    """The verdict per granularity and architecture first, then the settings at a glance, the
    comparisons' details, datasets and methods."""
    metric = settings[0].metric if settings else PRIMARY
    by_label = {v: k[0] for k, v in names.items()}
    glance = settings_table(settings, names)
    ranks = [ranks_table(c, by_label, styles) for c in comparisons]
    comps = [comparison_context(c, by_label, figures.get(c.slug), t)
             for c, t in zip(comparisons, ranks)]
    tables = [glance, *ranks]
    datasets = sorted({s.key.dataset for s in settings})
    spans = sorted({span_text(s) for s in settings})
    return {"title": "XPrune Bench leaderboard", "root": "", "glance": glance.context(""),
            "symbols": symbols(styles),
            "metric": METRIC_NAMES[metric], "primary": metric == PRIMARY,
            "primary_name": METRIC_NAMES[PRIMARY], "switch": switcher("index", metric),
            "verdicts": [verdict(c) for c in comparisons], "spans": ", ".join(spans),
            "comparisons": comps, "methods": methods, "failed": failed,
            "records": sum(len(p.acc.cells) for s in settings for r in s.rows for p in r.points),
            "datasets": [{"name": d, "href": html(f"datasets/{d}", metric),
                          "settings": sum(1 for s in settings if s.key.dataset == d)}
                         for d in datasets]}, tables


def metrics_context() -> dict[str, Any]:
    """The metrics page: its constants come from the code that applies them."""
    from bench.results.stats import ALPHA
    from bench.results.summary import LRP_EXPLAINERS

    return {"title": "What every number means", "root": "", "one_point": f"{100 * ONE_POINT:g}",
            "alpha": f"{ALPHA:g}", "level": f"{100 * (1 - ALPHA):g}",
            "cnn_explainer": LRP_EXPLAINERS[0], "transformer_explainer": LRP_EXPLAINERS[1]}
