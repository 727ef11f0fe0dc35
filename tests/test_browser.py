"""Headless Chromium drives the rendered site from file://.

The site is rendered from constructed records (tests/recordfactory.py): three methods with
known curves on the synthetic dataset (a third-party plugin's description carries a script tag and an
onerror image, to prove it renders as inert text; random collapses), plus a realistic grid of
the 12 CNN built-in methods x 3 seeds on two datasets, and a ViT setting with the methods
that score transformers (lrp-attn among them). Needs Debian's chromium (/usr/bin/chromium)
and the playwright Python package; without them the test is skipped with the reason
(XPRUNE_CHROMIUM overrides the path). Screenshots of the index, a CNN and a ViT setting page, a
dataset page and a method page at 1400 and 390 px go to test-artifacts/.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from recordfactory import curve, grid

from bench.results import records
from bench.site.render import render

CHROMIUM = os.environ.get("XPRUNE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EVIL = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
SYNTHETIC = "settings/synthetic-28-smallcnn-channel-layer-bnrecal-e10-r10-m0.html"
BLOOD = "settings/bloodmnist-28-vgg-channel-layer-bnrecal-e10-r10-m0.html"
VIT = "settings/bloodmnist-28-vit-channel-layer-none-e10-r10-m0.html"
VIT_METHODS = {"random": True, "magnitude": True, "taylor": True, "activation": False,
               "gradient": False, "ig": True, "lrp-attn": False}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three known methods x two seeds x three sparsities, and a 12-method grid."""
    root = tmp_path_factory.mktemp("browser")
    recs = []
    for seed, dense in ((0, 0.96), (1, 0.94)):
        d = seed / 100  # seed 1 is one point worse everywhere
        recs += curve({0.2: 0.95 - d, 0.5: 0.90 - d, 0.8: 0.80 - d}, method="magnitude", seed=seed,
                      dense_acc=dense, preserved=0.9 - d, maps=seed == 0)
        recs += curve({0.2: 0.90 - d, 0.5: 0.62 - d, 0.8: 0.33 - d}, method="random", seed=seed,
                      dense_acc=dense, bal_acc=0.34, preserved=0.5 - d)
        recs += curve({0.2: 0.955 - d, 0.5: 0.93 - d, 0.8: 0.85 - d}, method="plugin-x", seed=seed,
                      dense_acc=dense, description=EVIL, preserved=0.8 - d)
    recs += grid(datasets=("bloodmnist", "breastmnist"), backbones=("vgg",), scopes=("layer",),
                 recoveries=("bnrecal",))
    recs += grid(datasets=("bloodmnist",), backbones=("vit",), methods=VIT_METHODS,
                 scopes=("layer",), recoveries=("none",))
    for r in recs:
        records.write(root / "reports" / r["cell"]["dataset"] / r["cell"]["method"], r)
    render(root / "reports", root / "site")
    return root / "site"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium through Playwright, or a skip that says what is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not installed at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser: Any, width: int) -> Any:
    """A page that records console errors, page errors and any non-file request."""
    context = browser.new_context(viewport={"width": width, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.problems = []
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(f"console: {m.text}"))
    pg.on("pageerror", lambda e: pg.problems.append(f"pageerror: {e}"))

    def guard(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            pg.problems.append(f"network request: {route.request.url}")
            route.abort()

    context.route("**/*", guard)
    return pg


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    pg = _open(browser, 1400)
    yield pg
    pg.context.close()


@pytest.fixture
def narrow(browser: Any) -> Iterator[Any]:
    pg = _open(browser, 390)
    yield pg
    pg.context.close()


def _column(pg: Any, table: str, index: int, visible: bool = False) -> list[str]:
    rows = f"#{table} tbody tr" + (":not([hidden])" if visible else "")
    return pg.eval_on_selector_all(rows, f"rows => rows.map(r => r.cells[{index}].getAttribute('data-sort'))")


def _numbers(values: list[str]) -> list[float]:
    return [float(v) for v in values if v != ""]


def _shot(pg: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_index_filters_sort_and_rank_tables(site: Path, page: Any) -> None:
    page.goto((site / "index.html").as_uri())
    rows = page.locator("#settings-bal_acc tbody tr")
    assert rows.count() == 7  # synthetic channel; blood and breast x channel and weight; ViT
    assert page.locator("#settings-bal_acc tbody td:nth-child(5)").count() == 7
    form = page.locator("form.filters[data-table=settings-bal_acc]")
    assert form.is_visible()
    form.locator("select[name=dataset]").select_option("bloodmnist")
    assert page.locator("#settings-bal_acc tbody tr:not([hidden])").count() == 4
    assert form.locator("output").text_content() == "showing 4 of 7 rows"
    form.locator("select[name=granularity]").select_option("weight")
    assert page.locator("#settings-bal_acc tbody tr:not([hidden])").count() == 2  # vgg and vit
    assert page.evaluate("location.hash") == "#dataset=bloodmnist&granularity=weight"
    page.locator("#settings-bal_acc thead th", has_text="Curve area").locator("button").click()
    assert page.locator("#settings-bal_acc tbody tr:not([hidden])").count() == 2  # sorted, still filtered
    page.reload()  # the address restores the filter
    assert page.locator("#settings-bal_acc tbody tr:not([hidden])").count() == 2
    assert form.locator("select[name=dataset]").input_value() == "bloodmnist"
    form.locator("select[name=dataset]").select_option("")
    form.locator("select[name=granularity]").select_option("")
    assert page.locator("#settings-bal_acc tbody tr:not([hidden])").count() == 7
    ranks = page.locator("#ranks-channel-cnn-bal_acc tbody td:first-child").all_inner_texts()
    assert len(ranks) == 12 and {"magnitude", "random", "taylor"} <= {r.strip() for r in ranks}
    assert "not compared, too few settings: plugin-x" in page.locator("main").inner_text()
    page.locator("#ranks-channel-cnn-bal_acc thead th", has_text="Mean rank").locator("button").click()
    col = _numbers(_column(page, "ranks-channel-cnn-bal_acc", 1))
    assert col == sorted(col)
    assert page.locator("img.cd").count() == 2  # CNN channel and weight (one ViT setting: no test)
    assert page.locator("img.cd").first.evaluate("i => i.naturalWidth") > 100
    assert header_loaded(page)
    _shot(page, "index-1400.png")
    assert page.problems == []


def header_loaded(pg: Any) -> bool:
    """The stylesheet loaded from file:// (CSP allows 'self')."""
    return pg.eval_on_selector("header", "h => getComputedStyle(h).backgroundColor") == "rgb(243, 245, 248)"


def test_csv_download_matches_the_table(site: Path, page: Any) -> None:
    page.goto((site / "index.html").as_uri())
    with page.expect_download() as download:
        page.locator(".downloads a", has_text="CSV").first.click()
    path = download.value.path()
    assert download.value.suggested_filename == "settings.csv"
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    keys = page.eval_on_selector_all("#settings-bal_acc thead th", "hs => hs.map(h => h.dataset.key)")
    assert [k for k in rows[0] if not k.endswith(("_lo", "_hi"))] == [
        "slug", "dataset", "size", "backbone", "granularity", "scope", "recovery", "seeds", "metric",
        "tied", "area_bal_acc", "area_auc", "area_acc", *keys]
    assert len(rows) == page.locator("#settings-bal_acc tbody tr").count()
    shown = page.eval_on_selector(
        "#settings-bal_acc tbody tr:first-child", "r => Array.from(r.cells).map(c => c.getAttribute('data-sort'))")
    first = rows[0]
    for key, value in zip(keys, shown):
        if key in ("setting", "best", "range"):
            assert first["slug" if key == "setting" else key] == value
        elif value:
            assert float(first[key]) == pytest.approx(float(value), rel=1e-6)
    assert page.problems == []


def test_setting_page_sorts_plots_and_highlights_methods(site: Path, page: Any) -> None:
    page.goto((site / SYNTHETIC).as_uri())
    area_col = 2  # method, rank, curve area: the key columns first
    assert _numbers(_column(page, "methods-bal_acc", area_col)) == sorted(
        _numbers(_column(page, "methods-bal_acc", area_col)), reverse=True)  # rendered best first
    assert page.locator("#methods-bal_acc tbody td:nth-child(2)").all_inner_texts() == [
        "1 of 3", "2 of 3", "3 of 3"]
    area = page.locator("#methods-bal_acc thead th", has_text="Curve area")
    area.locator("button").click()
    ascending = _numbers(_column(page, "methods-bal_acc", area_col))
    assert ascending == sorted(ascending) and len(ascending) == 3
    assert area.get_attribute("aria-sort") == "ascending"
    page.locator("#methods-bal_acc thead th", has_text="Method").locator("button").click()
    assert _column(page, "methods-bal_acc", 0) == ["magnitude", "plugin-x", "random"]
    plots = page.locator("svg.plot")
    ids = plots.evaluate_all("ps => ps.map(p => p.id)")
    assert ids == ["plot-metric", "plot-latency", "plot-preserved", "plot-macs"]
    for i in range(plots.count()):
        plot = plots.nth(i)
        assert plot.locator("g.series").count() == 3 and plot.locator("use.pt").count() == 9
        assert plot.locator("text.xtick").count() >= 3 and plot.locator("text.ytick").count() >= 3
    main = page.locator("#plot-metric")
    assert main.evaluate("p => p.getBoundingClientRect().width") > 700  # the large panel
    assert main.locator("polygon.band").count() == 3  # two seeds: 95% bands
    # the dense model and chance (1/K = 1/3), labelled; no majority line: synthetic data has no file
    assert main.locator("line.ref").evaluate_all("ls => ls.map(l => l.getAttribute('class'))") == [
        "ref dense", "ref chance"]
    assert main.locator("text.reflabel").all_text_contents() == ["dense", "chance"]
    markers = main.locator("g.series").evaluate_all(
        "gs => gs.map(g => g.querySelector('use.pt').getAttribute('href'))")
    assert len(set(markers)) == 3  # a different marker per method
    collapsed = main.locator("g.series[data-series=random] use.pt.collapsed")
    assert collapsed.count() == 3 and collapsed.first.get_attribute("fill") == "#fff"
    assert page.locator("#plot-macs circle.on-front").count() >= 1
    assert page.locator("svg.plot[role=img]").count() == 0  # groups of links, not images
    # the legend turns a method grey in every plot (no band, grey line), and back
    button = page.locator(".legend button[data-series=random]")
    assert button.get_attribute("aria-pressed") == "true"  # random: highlighted at first
    line = "#plot-metric g.series[data-series=random] polyline"
    coloured = page.eval_on_selector(line, "l => getComputedStyle(l).stroke")
    button.click()
    assert button.get_attribute("aria-pressed") == "false"
    assert page.eval_on_selector(line, "l => getComputedStyle(l).stroke") == "rgb(196, 200, 206)"
    assert not page.locator("#plot-metric polygon.band[data-series=random]").is_visible()
    assert page.locator("svg.plot g.series.muted[data-series=random]").count() == 4
    button.click()
    assert page.eval_on_selector(line, "l => getComputedStyle(l).stroke") == coloured
    page.locator(".legend button[data-show=none]").click()
    assert page.locator("svg.plot g.series.hl").count() == 0
    page.locator(".legend button[data-show=all]").click()
    assert page.locator("svg.plot g.series.hl").count() == 12
    # a point's record link opens its method's records side by side, in words
    page.locator("#point-table tbody tr:first-child a.rec").first.click()
    assert "What differs between the records" in page.locator("main").inner_text()
    assert "reports/synthetic/" in page.locator("main").inner_text()  # where the published files are
    page.goto((site / BLOOD).as_uri())
    assert page.locator(".legend button.legend-item").count() == 12
    # highlighted: the best, random and magnitude; the rest grey
    on = page.locator(".legend button[aria-pressed=true]").all_inner_texts()
    assert {"random", "magnitude"} <= {t.strip() for t in on} and len(on) == 3
    assert page.locator("#plot-metric g.series.muted").count() == 12 - len(on)
    assert page.locator("svg.plot").count() == 4
    page.goto((site / BLOOD.replace(".html", ".auc.html")).as_uri())
    assert page.locator("svg.plot").count() == 1  # the other metrics: the main plot only
    page.locator("#plot-metric g.series.hl a").last.click()  # a point (on top): its points row
    assert "#pt-" in page.url and page.url.split("#")[0].endswith(Path(BLOOD).name)
    assert page.problems == []


def test_sort_headers_and_column_chooser_work_from_the_keyboard(site: Path, page: Any) -> None:
    page.goto((site / BLOOD).as_uri())
    header = page.locator("#methods-bal_acc thead th", has_text="Curve area")
    header.locator("button").focus()
    page.keyboard.press("Enter")
    assert header.get_attribute("aria-sort") == "ascending"
    page.keyboard.press("Space")
    assert header.get_attribute("aria-sort") == "descending"
    page.keyboard.press("Shift+Tab")  # the previous header is reachable by Tab
    assert page.evaluate("document.activeElement.closest('th').dataset.key") == "rank"
    hidden = "#methods-bal_acc th.more"
    assert page.locator(hidden).first.is_hidden()  # key columns only at first
    chooser = page.locator("button.columns[data-table=methods-bal_acc]")
    chooser.focus()
    page.keyboard.press("Enter")
    assert chooser.get_attribute("aria-pressed") == "true" and page.locator(hidden).first.is_visible()
    legend = page.locator("details.columns-legend").first
    legend.locator("summary").focus()
    page.keyboard.press("Enter")  # column meanings open by keyboard (or touch), not hover
    assert legend.locator("dt", has_text="Curve area").is_visible()
    assert "trapezoid" in legend.inner_text()
    assert page.problems == []


PAGES = {"index": "index.html", "setting": BLOOD, "setting-vit": VIT,
         "dataset": "datasets/bloodmnist.html", "method": "methods/lrp-epsilon.html"}


@pytest.mark.parametrize("width", [1400, 390])
@pytest.mark.parametrize("name", list(PAGES))
def test_main_content_never_overflows(site: Path, browser: Any, name: str, width: int) -> None:
    pg = _open(browser, width)
    try:
        pg.goto((site / PAGES[name]).as_uri())
        sizes = pg.evaluate("""() => { const m = document.querySelector('main'), d = document.documentElement;
            return [d.scrollWidth, d.clientWidth, m.scrollWidth, m.clientWidth]; }""")
        assert sizes[0] <= sizes[1] and sizes[2] <= sizes[3], f"{name} at {width} px overflows: {sizes}"
        if width == 1400:  # the key columns fit a desktop screen: no table scrolls sideways
            boxes = pg.eval_on_selector_all(
                ".scroll", "bs => bs.filter(b => b.querySelector('table.has-more'))"
                           ".map(b => [b.scrollWidth, b.clientWidth])")
            assert all(w <= c + 1 for w, c in boxes), f"{name}: a table overflows its box: {boxes}"
        footer = pg.locator("footer").inner_text()
        for text in ("Repository", "xprune leaderboard", "@software{xprune_bench", "Submit a method",
                     "xprune check"):
            assert text in footer, text
        _shot(pg, f"{name}-{width}.png")
        assert pg.problems == []
    finally:
        pg.context.close()


def test_hostile_description_is_inert_text(site: Path, page: Any) -> None:
    page.goto((site / "methods" / "plugin-x.html").as_uri())
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.querySelectorAll('main img').length") == 0
    assert page.evaluate("document.querySelectorAll('main script').length") == 0
    descriptions = page.locator("dd.description").all_inner_texts()
    assert descriptions and all(d == EVIL for d in descriptions)
    assert page.locator("#results-bal_acc tbody tr").count() == 1
    page.locator("#results-bal_acc tbody tr:first-child td:first-child a").click()  # to its setting row
    assert page.evaluate("location.hash") == "#row-plugin-x"
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#row-plugin-x td:first-child").inner_text().strip() == "plugin-x"
    assert page.problems == []


def test_method_page_links_filters_and_screenshot(site: Path, page: Any) -> None:
    page.goto((site / "methods" / "taylor.html").as_uri() + "#dataset=bloodmnist")
    assert page.locator("#results-bal_acc tbody tr:not([hidden])").count() == 4  # vgg, vit x channel, weight
    link = page.locator("dd.reference a").first
    assert link.get_attribute("href") == "https://arxiv.org/abs/1611.06440"
    page.goto((site / "methods" / "lrp-epsilon.html").as_uri())
    assert page.locator("#results-bal_acc tbody tr").count() == 4  # 2 datasets x channel and weight
    _shot(page, "method-1400.png")
    assert page.problems == []


def test_transparency_is_shown_as_column_plot_and_heatmap_pictures(site: Path, page: Any) -> None:
    page.goto((site / SYNTHETIC).as_uri())
    headers = page.eval_on_selector_all("#methods-bal_acc thead th", "ths => ths.map(t => t.innerText)")
    assert any("preserv" in h.lower() for h in headers)
    column = headers.index(next(h for h in headers if "preserv" in h.lower()))
    values = dict(zip(_column(page, "methods-bal_acc", 0), _column(page, "methods-bal_acc", column)))
    assert float(values["magnitude"]) > float(values["random"])  # 0.895 vs 0.495, as recorded
    assert page.locator("#plot-preserved use.pt").count() == 9  # 3 methods x 3 sparsities
    page.goto((site / "methods" / "magnitude.html").as_uri())
    picture = page.locator("img.heatmaps")
    assert picture.count() == 1
    assert page.evaluate("img => img.complete && img.naturalWidth > 0",
                         picture.element_handle())
    _shot(page, "method-heatmaps-1400.png")
    assert page.problems == []


def test_every_page_opens_on_balanced_accuracy_and_switches_metric(site: Path, page: Any) -> None:
    page.goto((site / "index.html").as_uri())
    switch = page.locator("nav.metric-switch")
    assert switch.locator("strong").inner_text() == "balanced accuracy"
    assert switch.locator("a[data-metric]").all_inner_texts() == ["AUC", "accuracy"]
    assert page.locator("#verdict h2").inner_text() == "The answer, by balanced accuracy"
    assert page.locator("#verdict").bounding_box()["y"] < page.locator(
        "#settings-bal_acc").bounding_box()["y"]  # the answer comes before the settings
    switch.locator("a[data-metric='AUC']").click()
    assert page.url.endswith("/index.auc.html")
    assert page.locator("nav.metric-switch strong").inner_text() == "AUC"
    assert page.locator("#verdict h2").inner_text().startswith("The answer, by AUC")
    # a setting opened from the AUC overview stays on AUC; there the switch goes to ACC
    page.locator("#settings-auc tbody tr:first-child td:first-child a").click()
    assert page.url.endswith(".auc.html") and "/settings/" in page.url
    assert page.locator("#plot-metric text", has_text="AUC (%)").count() == 1
    page.locator("nav.metric-switch a[data-metric='accuracy']").click()
    assert page.url.endswith(".acc.html")
    assert page.locator("#methods-acc").count() == 1 and page.locator("#methods-bal_acc").count() == 0
    assert page.locator("#plot-metric text", has_text="accuracy (%)").count() == 1
    # on the synthetic setting random's balanced accuracy sits at chance: its area is marked
    # collapsed there, and not under ACC (no majority share is known for synthetic data)
    for suffix, metric, marked in ((".acc", "acc", False), ("", "bal_acc", True)):
        page.goto((site / SYNTHETIC.replace(".html", f"{suffix}.html")).as_uri())
        area = page.locator(f"#methods-{metric} #row-random td:nth-child(3)").inner_text()
        assert ("collapsed" in area) is marked, (metric, area)
    for path in (BLOOD, "methods/lrp-epsilon.html", "datasets/bloodmnist.html"):
        page.goto((site / path).as_uri())
        assert page.locator("nav.metric-switch strong").inner_text() == "balanced accuracy"
        for metric, suffix in (("AUC", ".auc"), ("accuracy", ".acc")):
            href = page.locator(f"nav.metric-switch a[data-metric='{metric}']").get_attribute("href")
            assert href == Path(path).name.replace(".html", f"{suffix}.html")
            assert (site / Path(path).parent / href).is_file()
    assert page.problems == []


@pytest.mark.parametrize("path", ["index.html", BLOOD, "methods/lrp-epsilon.html",
                                  "datasets/bloodmnist.html", "metrics.html"])
def test_narrow_screen_has_no_page_overflow_and_frozen_first_column(site: Path, narrow: Any,
                                                                    path: str) -> None:
    narrow.goto((site / path).as_uri())
    width = narrow.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"the page body overflows: {width}"
    tables, scrolled = narrow.locator(".scroll > table.frozen"), 0
    for i in range(tables.count()):
        table = tables.nth(i)
        moved = table.evaluate("""t => { const box = t.parentElement, cell = t.tBodies[0].rows[0].cells[0];
            cell.scrollIntoView({block: "center"}); box.scrollLeft = 400;
            const r = cell.getBoundingClientRect(),
                  b = box.getBoundingClientRect();
            const hit = document.elementFromPoint(r.left + 5, r.top + r.height / 2);
            return {scrolled: box.scrollLeft, left: r.left - b.left, visible: cell.contains(hit)}; }""")
        if moved["scrolled"] > 0:  # the table is wider than the screen: its first column stays
            assert abs(moved["left"]) < 2 and moved["visible"], f"table {i} of {path}: {moved}"
            scrolled += 1
    assert scrolled >= (0 if path == "metrics.html" else 1)  # wide tables scroll, not the page
    texts = narrow.locator("svg.plot text.xtick")
    if texts.count():
        size = texts.first.evaluate(
            "t => t.getScreenCTM().a * parseFloat(getComputedStyle(t).fontSize)")
        assert size >= 11, f"plot text is {size:.1f} px at 390 px"
    assert narrow.problems == []
