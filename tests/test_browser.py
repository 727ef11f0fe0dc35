"""Headless Chromium drives the rendered site from file://.

The site is rendered from constructed records (tests/recordfactory.py); one plugin's
description carries a script tag and an onerror image to prove it renders as inert text.
Needs Debian's chromium (/usr/bin/chromium) and the playwright Python package; without
them the test is skipped with the reason (XPRUNE_CHROMIUM overrides the path). A screenshot goes to test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from recordfactory import curve

from bench import records
from bench.render import render

CHROMIUM = os.environ.get("XPRUNE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EVIL = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site from three methods x two seeds x three sparsities, plus a second dataset."""
    root = tmp_path_factory.mktemp("browser")
    recs = []
    for seed, dense in ((0, 0.96), (1, 0.94)):
        d = seed / 100  # seed 1 is one point worse everywhere
        recs += curve({0.2: 0.95 - d, 0.5: 0.90 - d, 0.8: 0.80 - d}, method="magnitude", seed=seed,
                      dense_acc=dense)
        recs += curve({0.2: 0.90 - d, 0.5: 0.62 - d, 0.8: 0.33 - d}, method="random", seed=seed,
                      dense_acc=dense)
        recs += curve({0.2: 0.955 - d, 0.5: 0.93 - d, 0.8: 0.85 - d}, method="taylor", seed=seed,
                      dense_acc=dense, description=EVIL)
    recs += curve({0.5: 0.8}, method="magnitude", dataset="bloodmnist")
    recs += curve({0.5: 0.7}, method="random", dataset="bloodmnist")
    for r in recs:
        records.write(root / "reports" / r["cell"]["method"], r)
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


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page that records console errors, page errors and any non-file request."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
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
    yield pg
    context.close()


def _column(pg: Any, table: str, index: int) -> list[str]:
    return pg.eval_on_selector_all(
        f"#{table} tbody tr", f"rows => rows.map(r => r.cells[{index}].getAttribute('data-sort'))")


def _numbers(values: list[str]) -> list[float]:
    return [float(v) for v in values if v != ""]


def test_index_renders_grid_and_mean_rank_table(site: Path, page: Any) -> None:
    page.goto((site / "index.html").as_uri())
    assert page.locator("#grid tbody tr").count() == 2  # synthetic and bloodmnist lines
    assert page.locator("#grid .best a").count() == 2
    names = [n.strip() for n in page.locator("#overall tbody td:first-child").all_inner_texts()]
    assert names == ["taylor", "magnitude", "random"]
    header = page.eval_on_selector("header", "h => getComputedStyle(h).backgroundColor")
    assert header == "rgb(243, 245, 248)"  # the stylesheet loaded from file://
    page.locator("#overall thead th", has_text="Mean rank").click()
    assert _numbers(_column(page, "overall", 4)) == sorted(_numbers(_column(page, "overall", 4)))
    assert page.problems == []


def test_setting_page_table_sorts_and_plots_render(site: Path, page: Any) -> None:
    setting = next((site / "settings").glob("synthetic-*.html"))
    page.goto(setting.as_uri())
    area_col = 3
    assert _numbers(_column(page, "methods", area_col)) == sorted(
        _numbers(_column(page, "methods", area_col)), reverse=True)  # rendered best first
    area = page.locator("#methods thead th", has_text="Curve area")
    area.click()
    ascending = _numbers(_column(page, "methods", area_col))
    assert ascending == sorted(ascending) and len(ascending) == 3
    assert area.get_attribute("aria-sort") == "ascending"
    area.click()
    assert _numbers(_column(page, "methods", area_col)) == sorted(ascending, reverse=True)
    page.locator("#methods thead th", has_text="Method").click()
    assert _column(page, "methods", 1) == ["magnitude", "random", "taylor"]
    plots = page.locator("svg.plot")
    assert plots.count() == 2
    for i in range(2):
        box = plots.nth(i).bounding_box()
        assert box["width"] > 300 and box["height"] > 150
        assert plots.nth(i).locator("g.series polyline").count() == 3
        assert plots.nth(i).locator("circle.pt").count() == 9
        assert plots.nth(i).locator("text.xtick").count() >= 3
        assert plots.nth(i).locator("text.ytick").count() >= 3
        assert "taylor" in plots.nth(i).locator("g.legend").text_content()
    acc_plot, macs_plot = plots.nth(0), plots.nth(1)
    assert acc_plot.locator("line.ref").count() == 1
    assert "dense model" in acc_plot.locator("line.ref title").text_content()
    assert macs_plot.locator("circle.on-front").count() >= 1
    assert macs_plot.locator("polyline.front").count() == 1
    assert "sparsity 0.8" in macs_plot.locator("circle.pt title").last.text_content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "leaderboard-setting.png"), full_page=True)
    assert page.problems == []


def test_hostile_description_is_inert_text(site: Path, page: Any) -> None:
    page.goto((site / "methods" / "taylor.html").as_uri())
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("document.querySelectorAll('main script').length") == 0
    descriptions = page.locator("dd.description").all_inner_texts()
    assert descriptions and all(d == EVIL for d in descriptions)
    assert page.locator("#results tbody tr").count() == 1
    assert page.problems == []
