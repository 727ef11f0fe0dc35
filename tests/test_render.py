"""render(): pages, escaping, leaderboard.json, downloads, record links, SVG geometry, output safety.

All sites here are rendered from constructed records (tests/recordfactory.py), never
from a real run; they live in pytest's tmp_path and are not committed.
"""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from recordfactory import curve, make_record

from bench.core.errors import RecordError, XPruneError
from bench.results import records
from bench.site.methodpage import reference_parts, source_href
from bench.site.render import MARKER, REPOSITORY, render
from bench.site.svg import COLORS, MARKER_NAMES, MARKERS, MUTED, PINNED, axes, nice_ticks, styles

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'
SLUG = "synthetic-28-smallcnn-channel-layer-bnrecal-e10-r10-m0"
T1 = 12.706204736174707  # t(0.975, 1): the 95% interval of two seeds


def _reports(root: Path, recs: list[dict]) -> Path:
    for r in recs:
        records.write(root / "reports" / r["cell"]["dataset"] / r["cell"]["method"], r)
    return root / "reports"


def _standard(tmp_path: Path) -> Path:
    recs = []
    for seed in (0, 1):
        recs += curve({0.2: 0.95 - seed / 100, 0.5: 0.9, 0.8: 0.8}, method="magnitude", seed=seed,
                      preserved=0.9 - seed / 10)
        recs += curve({0.2: 0.9, 0.5: 0.6, 0.8: 0.3}, method="random", seed=seed, description=EVIL,
                      bal_acc=0.34)
    recs += [make_record(status="failed", method="taylor")]
    return _reports(tmp_path, recs)


class Page(HTMLParser):
    """A light DOM of one page: ids, and per element with an id or per table row its links and
    cells (tag, attributes, links inside)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path, self.ids, self.rows, self.refs, self._open = path, {}, [], [], []
        self.feed(path.read_text())

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.refs += [a[k] for k in ("href", "src") if k in a]
        if tag == "tr":
            self.rows.append({"attrs": a, "cells": [], "table": self._table()})
        if tag in ("td", "th") and self.rows:
            self.rows[-1]["cells"].append({"tag": tag, "attrs": a, "links": []})
        if a.get("id"):
            self.ids[a["id"]] = []
        if tag == "a" and "href" in a:
            for el in self._open:
                if el[1]:
                    self.ids[el[1]].append(a["href"])
            if self.rows and self._within("tr") and self.rows[-1]["cells"]:
                self.rows[-1]["cells"][-1]["links"].append(a["href"])
        if tag not in ("meta", "link", "br", "img", "input", "line", "path", "rect", "circle",
                       "polygon", "polyline"):
            self._open.append((tag, a.get("id"), a))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def _within(self, tag: str) -> bool:
        return any(t == tag for t, _, _ in self._open)

    def _table(self) -> str:
        return next((a.get("id", "") for t, _, a in reversed(self._open) if t == "table"), "")


def _pages(site: Path) -> dict[Path, Page]:
    return {p: Page(p) for p in site.rglob("*.html")}


def _target(page: Path, href: str) -> tuple[Path, str]:
    parts = urlsplit(href)
    path = (page.parent / unquote(parts.path)).resolve() if parts.path else page.resolve()
    return path, parts.fragment


def test_render_writes_every_page(tmp_path: Path) -> None:
    summary = render(_standard(tmp_path), tmp_path / "site")
    site = tmp_path / "site"
    names = sorted(str(p.relative_to(site)) for p in summary.pages)
    variants = ("", ".acc", ".auc")  # one page per metric, the primary (balanced accuracy) plain
    assert names == sorted(["leaderboard.json", "metrics.html"] + [
        f"{page}{v}.html" for v in variants for page in (
            "datasets/synthetic", "index", "methods/magnitude", "methods/random", f"settings/{SLUG}")])
    # one record page per method in a setting (its 6 records side by side); no copied JSON
    assert (summary.records, summary.skipped_failed, summary.record_pages) == (12, 1, 2)
    assert str(summary).startswith(f"rendered 17 page(s) from 12 record(s) into {site}")
    for asset in ("style.css", "sort.js", "filter.js", "legend.js"):
        assert (site / "static" / asset).is_file()
    assert sorted(str(p.relative_to(site)) for p in (site / "records").rglob("*")
                  if p.is_file()) == [f"records/magnitude/{SLUG}.html", f"records/random/{SLUG}.html"]
    downloads = sorted(str(p.relative_to(site)) for p in (site / "data").rglob("*.csv"))
    assert downloads == sorted([f"data/settings/{SLUG}-points.csv"] + [
        f"data/{name}{v}.csv" for v in variants for name in (
            "datasets/synthetic", "methods/magnitude", "methods/random", "ranks-channel-cnn",
            "settings", f"settings/{SLUG}-methods")])
    assert summary.downloads == 38  # 6 tables per metric and the metric-free points, each with JSON


def test_every_link_resolves_and_every_number_reaches_its_records(tmp_path: Path) -> None:
    render(_standard(tmp_path), tmp_path / "site")
    site = tmp_path / "site"
    pages = _pages(site)
    published = {p.stem for p in (tmp_path / "reports").rglob("*.json")
                 if records.read(p)["status"] == "ok"}

    def reach(page: Path, href: str) -> set[str]:
        """Records reached from a link: a record page, or an anchor whose element links them."""
        path, fragment = _target(page, href)
        if path.parent.parent.name == "records":  # records/<method>/<setting>.html#<hash>
            if not fragment:  # the page itself: every record of a method in a setting
                return {i for i in pages[path].ids if re.fullmatch("[0-9a-f]{16}", i)}
            assert fragment in pages[path].ids, f"{href}: no record column #{fragment}"
            return {fragment}
        if not fragment or "=" in fragment:  # a filtered view of a table: its rows lead on
            return {h for row in pages[path].rows for c in row["cells"][:1] for link in c["links"]
                    for h in reach(path, link)} if "=" in fragment else set()
        return {x for h in pages[path].ids[fragment] if "records/" in h for x in reach(path, h)}

    checked = 0
    for path, page in pages.items():
        for href in page.refs:
            if href.startswith(("https://", "data:")):
                continue
            target, fragment = _target(path, href)
            assert target.exists(), f"{path.name}: broken link {href}"
            if fragment and "=" not in fragment and target.suffix == ".html":
                assert fragment in pages[target].ids, f"{path.name}: no #{fragment} in {target.name}"
            checked += 1
        for row in page.rows:
            row_records = {h for c in row["cells"] for link in c["links"] if "records/" in link
                           for h in reach(path, link)}
            first = {h for link in (row["cells"][0]["links"] if row["cells"] else []) for h in reach(path, link)}
            for cell in row["cells"]:
                if cell["tag"] != "td" or "text" in cell["attrs"].get("class", ""):
                    continue
                if cell["attrs"].get("data-sort", "") == "":
                    continue
                own = {h for link in cell["links"] for h in reach(path, link)}
                assert own or row_records or first, f"{path.name}: a number leads to no record"
                assert (own or row_records or first) <= published
    assert checked > 300
    cited = {r for p, page in pages.items() if p.parent.name == "settings"
             for row in page.rows for c in row["cells"] for h in c["links"] if "records/" in h
             for r in reach(p, h)}
    assert cited == published


def test_setting_page_numbers_and_their_records(tmp_path: Path) -> None:
    render(_standard(tmp_path), tmp_path / "site")
    site = tmp_path / "site"
    html = (site / "settings" / f"{SLUG}.acc.html").read_text()
    # ACC@0.2 of magnitude: seeds 95% and 94%, its 95% t-interval
    low, high = 94.5 - 100 * T1 * 0.005, 100.0  # 94.5 + 6.4 is clipped to 100
    assert f'94.5 <span class="ci">[{low:.1f}–{high:.1f}]</span>' in html
    page = Page(site / "settings" / f"{SLUG}.acc.html")
    row = next(r for r in page.rows if r["attrs"].get("id") == "row-magnitude")
    # the area links one page: the method's records in this setting, one column each
    assert {h for c in row["cells"] for h in c["links"] if "records/" in h} == {
        f"../records/magnitude/{SLUG}.html"}
    group = Page(site / "records" / "magnitude" / f"{SLUG}.html")
    assert {i for i in group.ids if re.fullmatch("[0-9a-f]{16}", i)} == {
        p.stem for p in (tmp_path / "reports" / "synthetic" / "magnitude").glob("*.json")}
    page = Page(site / "settings" / f"{SLUG}.html")  # the table of points: the primary page's
    point = next(r for r in page.rows if r["attrs"].get("id") == "pt-magnitude-0.2")
    records_cell = next(c for c in point["cells"] if any("records/" in h for h in c["links"]))
    assert [urlsplit(link).fragment for link in records_cell["links"]] == [
        r['cell_hash'] for r in sorted(
            (records.read(p) for p in (tmp_path / "reports" / "synthetic" / "magnitude").glob("*.json")),
            key=lambda r: r["cell"]["seed"]) if r["cell"]["sparsity"] == 0.2]
    index = Page(site / "index.acc.html")
    (glance,) = [r for r in index.rows if r["table"] == "settings-acc" and r["cells"][0]["tag"] == "td"]
    cells = {c: glance["cells"][i] for i, c in enumerate(
        ["setting", "best", "area", "within", "dense", "chance", "majority", "range", "red",
         "speedup", "preserved", "collapsed"])}
    assert cells["area"]["links"] == [f"settings/{SLUG}.acc.html#row-magnitude"]
    assert cells["range"]["attrs"]["data-sort"] == "0.2–0.8"
    # dense 95%, magnitude 94.5% at 0.2 (within 1 point), 90% at 0.5: operating point 0.2
    assert cells["within"]["attrs"]["data-sort"] == "0.2"
    assert cells["red"]["links"] == cells["preserved"]["links"] == [f"settings/{SLUG}.html#pt-magnitude-0.2"]
    assert cells["red"]["attrs"]["data-sort"] == "1.5625"  # 1M / (1M * 0.8^2) MACs
    assert cells["preserved"]["attrs"]["data-sort"] == "0.85"  # seeds 0.9 and 0.8


def test_intervals_that_print_as_the_mean_are_left_out_and_settings_without_a_best(
        tmp_path: Path) -> None:
    recs = (curve({0.2: 0.9}, method="magnitude", seed=0) + curve({0.2: 0.9}, method="magnitude", seed=1)
            + curve({0.8: 0.7}, method="random"))  # neither row is complete: nobody ranks first
    render(_reports(tmp_path, recs), tmp_path / "site")
    html = (tmp_path / "site" / "settings" / f"{SLUG}.html").read_text()
    row = html[html.index('id="pt-magnitude-0.2"'):]
    row = row[:row.index("</tr>")]
    assert '<td data-sort="0.9">90.0 <a class="rec"' not in row  # points table: no seed links
    assert ">90.0</td>" in row and ">0.64M</td>" in row and "[" not in row.replace("[IQR", "")
    index = Page(tmp_path / "site" / "index.acc.html")
    (glance,) = [r for r in index.rows if r["table"] == "settings-acc" and r["cells"][0]["tag"] == "td"]
    assert glance["cells"][1]["attrs"]["data-sort"] == "—" and glance["cells"][2]["attrs"]["data-sort"] == ""


def test_a_best_method_is_named_alone_only_when_its_interval_separates_it(tmp_path: Path) -> None:
    recs = []
    for seed, (a, b, c) in enumerate([(0.90, 0.89, 0.60), (0.92, 0.90, 0.62)]):
        recs += curve({0.5: a}, method="magnitude", seed=seed)  # 91 [78.3-100]
        recs += curve({0.5: b}, method="taylor", seed=seed)  # 89.5 [83.1-95.9]: overlaps
        recs += curve({0.5: c}, method="random", seed=seed)  # 61 [48.3-73.7]: separated
    render(_reports(tmp_path, recs), tmp_path / "site")
    index = Page(tmp_path / "site" / "index.html")
    (glance,) = [r for r in index.rows if r["table"] == "settings-bal_acc" and r["cells"][0]["tag"] == "td"]
    assert glance["cells"][1]["attrs"]["data-sort"] == "tied: magnitude, taylor"
    rows = list(csv.DictReader((tmp_path / "site" / "data" / "settings.csv").open()))
    assert (rows[0]["best"], rows[0]["tied"]) == ("tied: magnitude, taylor", "magnitude, taylor")


def test_downloads_match_their_tables(tmp_path: Path) -> None:
    render(_standard(tmp_path), tmp_path / "site")
    site = tmp_path / "site"
    page = Page(site / f"settings/{SLUG}.acc.html")
    rows = list(csv.DictReader((site / "data" / "settings" / f"{SLUG}-methods.acc.csv").open()))
    table = [r for r in page.rows if r["table"] == "methods-acc"]
    keys = [c["attrs"]["data-key"] for c in table[0]["cells"]]
    # key columns first (the rest behind the column chooser)
    assert keys[:7] == ["method", "rank", "area", "acc_0.2", "acc_0.5", "acc_0.8", "within"]
    assert keys[7:10] == ["version", "area_bal_acc", "area_auc"]
    header = list(rows[0])
    assert [k for k in header if not k.endswith(("_lo", "_hi"))] == keys
    assert header[2:5] == ["area", "area_lo", "area_hi"]
    for csv_row, html_row in zip(rows, table[1:]):
        for key, cell in zip(keys, html_row["cells"]):
            shown = cell["attrs"]["data-sort"]
            if key in ("method", "version"):
                assert csv_row[key] == shown
            elif shown:
                assert float(csv_row[key]) == pytest.approx(float(shown), rel=1e-6)
    mag = rows[0]
    # per-seed areas: seed0 (0.925+0.85)/2 = 0.8875, seed1 (0.92+0.85)/2 = 0.885;
    # sd 0.0025/sqrt(2), half-width t * sd / sqrt(2) = t * 0.00125
    assert float(mag["area"]) == pytest.approx(0.88625)
    assert float(mag["area_lo"]) == pytest.approx(0.88625 - T1 * 0.00125, rel=1e-7)  # 7 digits
    data = json.loads((site / "data" / "settings.acc.json").read_text())
    assert data["columns"][:13] == ["slug", "dataset", "size", "backbone", "granularity", "scope",
                                    "recovery", "seeds", "metric", "tied", "area_bal_acc",
                                    "area_auc", "area_acc"]
    first = dict(zip(data["columns"], data["rows"][0]))  # rows are lists in column order
    assert first["best"] == "magnitude" and first["area"] == pytest.approx(0.88625)
    assert first["within"] == 0.2 and first["collapsed"] == 0
    assert first["preserved"] == pytest.approx(0.85)
    points = list(csv.DictReader((site / "data" / "settings" / f"{SLUG}-points.csv").open()))
    assert len(points) == 6 and len(points[0]["records"].split()) == 2


def test_hostile_description_is_escaped_and_javascript_urls_not_linked(tmp_path: Path) -> None:
    recs = curve({0.5: 0.9}, method="random", description=EVIL)
    recs[0]["method"]["reference"] = 'javascript:alert(3) https://ok.example/"><b>x</b>'
    render(_reports(tmp_path, recs), tmp_path / "site")
    for page in ("methods/random.html", f"records/random/{SLUG}.html", "index.html"):
        html = (tmp_path / "site" / page).read_text()
        assert "<script>alert" not in html and "<img" not in html and "<b>x" not in html
        assert 'href="javascript:' not in html
    html = (tmp_path / "site" / "methods" / "random.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html
    assert 'href="https://ok.example/&#34;&gt;&lt;b&gt;x&lt;/b&gt;"' in html  # a link, inert


def test_references_become_doi_and_arxiv_links() -> None:
    parts = reference_parts("Hatefi et al. 2024, arXiv:2408.12568; Bach et al. 2015, "
                            "doi:10.1371/journal.pone.0130140; Yeom, doi:10.1016/j.patcog.2021.107899.")
    assert [p["href"] for p in parts if p["href"]] == [
        "https://arxiv.org/abs/2408.12568", "https://doi.org/10.1371/journal.pone.0130140",
        "https://doi.org/10.1016/j.patcog.2021.107899"]
    assert "".join(p["text"] for p in parts).endswith("107899.")  # text kept whole
    assert reference_parts("see https://arxiv.org/abs/1608.08710")[1]["href"] == \
        "https://arxiv.org/abs/1608.08710"
    assert reference_parts("none") == [{"text": "none", "href": ""}]


def test_method_page_source_soundness_and_comparison(tmp_path: Path) -> None:
    recs = curve({0.5: 0.9}, method="random")
    recs[0]["method"]["soundness"] = "fail: 20% of units tie at the minimum"
    render(_reports(tmp_path, recs), tmp_path / "site")
    html = (tmp_path / "site" / "methods" / "random.html").read_text()
    assert 'class="soundness warning">Warning: this criterion fails' in html
    assert "<code>methods/random.py</code> (in the repository)" in html  # site outside the repo
    assert source_href("methods/random.py", REPOSITORY / "leaderboard" / "site", REPOSITORY) == \
        "../../../methods/random.py"
    assert source_href("methods/nope.py", REPOSITORY / "leaderboard" / "site", REPOSITORY) == ""
    assert source_href("../etc/passwd", REPOSITORY / "leaderboard" / "site", REPOSITORY) == ""


def test_record_pages_put_a_methods_records_side_by_side_in_words(tmp_path: Path) -> None:
    recs = (curve({0.5: 0.9}, method="magnitude", preserved=0.8)
            + curve({0.5: 0.85}, method="magnitude", preserved=0.8, seed=1)
            + curve({0.5: 0.8}, schema=1, method="random"))
    for r in recs[:2]:  # what a CPU run records: torch's CUDA build, nested dicts, booleans
        r["provenance"] |= {"cuda": "13.2", "device": {"gpu": None, "kind": "cpu"},
                            "determinism": {"cudnn_deterministic": False, "device": "cpu"}}
    render(_reports(tmp_path, recs), tmp_path / "site")
    site = tmp_path / "site"
    html = (site / "records" / "magnitude" / f"{SLUG}.html").read_text()
    page = Page(site / "records" / "magnitude" / f"{SLUG}.html")
    assert {recs[0]["cell_hash"], recs[1]["cell_hash"]} <= set(page.ids)  # one column each
    for text in ("sparsity 0.5 · seed 0", "sparsity 0.5 · seed 1",
                 "<td>90.0</td><td>85.0</td>",  # accuracy after recovery differs: a table row
                 "<dt>hardware</dt><dd>test CPU (x86_64), 1 thread</dd>",  # shared: printed once
                 "<dt>device</dt><dd>CPU</dd>", "determinism</dt><dd>cudnn deterministic no, device cpu</dd>",
                 "50k → 12.5k (4× fewer)",
                 "<code>reports/synthetic/magnitude/</code>", f"{recs[0]['cell_hash']}.json"):
        assert text in html, text
    for raw in ("True", "False", "{", "13.2", "cuda"):  # no raw dicts, Python booleans, or CUDA
        assert raw not in html.split("<main>")[1].split("</main>")[0], raw
    assert not list((site / "records").rglob("*.json"))  # the published files are not copied
    old = (site / "records" / "random" / f"{SLUG}-p1.html").read_text()  # its own protocol
    assert "hardware not recorded (schema 1)" in old and "<dd>80.0</dd>" in old


def test_raw_record_links_only_inside_the_repository(tmp_path: Path) -> None:
    from bench.site.render import raw_link

    record = REPOSITORY / "reports" / "a" / "b" / "c" / "0123.json"
    assert raw_link(record, REPOSITORY / "reports",
                    REPOSITORY / "leaderboard" / "site" / "records" / "m") == {
        "href": "../../../../reports/a/b/c/0123.json", "text": "reports/a/b/c/0123.json"}
    assert raw_link(tmp_path / "reports" / "a" / "b" / "0123.json", tmp_path / "reports",
                    tmp_path / "site") == {"href": "", "text": "reports/a/b/0123.json"}


def test_every_numeric_column_prints_one_format(tmp_path: Path) -> None:
    """Within a column every number has the same decimals (and unit), so a column reads down."""
    recs = []
    for seed in (0, 1):  # MACs from 1.28M down to 20k: two units in one column unless fixed
        recs += curve({0.2: 0.95, 0.5: 0.9, 0.9: 0.5}, method="magnitude", seed=seed,
                      macs_dense=2_000_000)
        recs += curve({0.2: 0.9, 0.5: 0.6, 0.9: 0.3}, method="random", seed=seed,
                      macs_dense=2_000_000)
    render(_reports(tmp_path, recs), tmp_path / "site")
    html = (tmp_path / "site" / "settings" / f"{SLUG}.html").read_text()
    checked = 0
    for table in ("methods-bal_acc", "point-table"):
        body = html[html.index(f'id="{table}"'):]
        body = body[body.index("<tbody>"):body.index("</tbody>")]
        rows = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body)]
        for column in zip(*rows):
            shown = [re.sub(r"<[^>]+>", " ", c).split()[0] for c in column if c]
            numbers = [t for t in shown if re.fullmatch(r"[0-9.]+[kMG]?", t)]
            if len(numbers) == len(shown) and len(set(shown)) > 1:
                shapes = {(len(t.split(".")[1]) if "." in t else 0, t[-1].isalpha() and t[-1]) for t in numbers}
                assert len(shapes) == 1, (table, numbers)
                checked += 1
    assert checked >= 8


def test_dataset_page_has_its_card_and_a_plot(tmp_path: Path) -> None:
    recs = (curve({0.3: 0.9, 0.6: 0.8}, method="magnitude", dataset="bloodmnist")
            + curve({0.3: 0.85, 0.6: 0.6}, method="random", dataset="bloodmnist"))
    render(_reports(tmp_path, recs), tmp_path / "site")
    html = (tmp_path / "site" / "datasets" / "bloodmnist.html").read_text()
    for text in ("<dt>test images</dt><dd>3,421</dd>", "<dt>licence</dt><dd>CC BY 4.0</dd>",
                 "<dt>train / validation images</dt><dd>11,959 / 1,712</dd>",
                 "<dt>task</dt><dd>multi-class, 8 classes</dd>", 'id="plot-metric"'):
        assert text in html, text
    assert html.count('<g class="series hl"') == 2  # random and magnitude, in colour


def test_every_page_has_the_footer(tmp_path: Path) -> None:
    render(_standard(tmp_path), tmp_path / "site")
    for page in (tmp_path / "site").rglob("*.html"):
        footer = page.read_text().split("<footer>")[1]
        for text in ("<b>Repository</b>", "xprune leaderboard --reports reports", "@software{xprune_bench",
                     "<b>Submit a method</b>", "xprune check methods/&lt;name&gt;.py", "CONTRIBUTING.md"):
            assert text in footer, (page.name, text)


def test_not_applicable_methods_are_named(tmp_path: Path) -> None:
    recs = (curve({0.5: 0.9}, method="activation") + curve({0.5: 0.9}, method="magnitude")
            + curve({0.5: 0.9}, method="magnitude", granularity="weight"))
    render(_reports(tmp_path, recs), tmp_path / "site")
    html = (tmp_path / "site" / "settings" / SLUG.replace("channel", "weight")).with_suffix(
        ".html").read_text()
    assert "Not applicable at weight granularity (the method does not support it): activation." in html


def test_leaderboard_json_holds_the_numbers_and_their_cells(tmp_path: Path) -> None:
    render(_standard(tmp_path), tmp_path / "site")
    data = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    assert data["primary"] == "bal_acc" and sorted(data["metrics"]) == ["acc", "auc", "bal_acc"]
    (setting,) = data["settings"]  # what no metric changes: once
    (ranked,) = data["metrics"]["acc"]["settings"]  # what ACC ranks
    assert ranked["slug"] == setting["slug"] == SLUG
    assert ranked["best"] == [["magnitude", "1"]] and data["skipped_failed"] == 1
    assert ranked["rows"][0]["method"] == "magnitude" and ranked["rows"][0]["rank"] == 1
    assert ranked["rows"][0]["within_one_point"] == 0.2
    mag = setting["rows"][0]
    # mean curve 0.945, 0.9, 0.8 -> (0.3*0.9225 + 0.3*0.85) / 0.6 = 0.88625
    assert mag["areas"]["acc"]["mean"] == pytest.approx(0.88625) and mag["seeds"] == [0, 1]
    assert len(mag["cells"]) == 6 and "cells" not in mag["areas"]["acc"]  # named once per row
    assert mag["areas"]["auc"]["mean"] == pytest.approx(0.9) and setting["dense"]["auc"]["mean"] == 0.97
    point = setting["rows"][0]["points"][0]
    assert point["acc"]["mean"] == pytest.approx(0.945) and point["seeds"] == [0, 1]
    assert len(point["cells"]) == 2 and "cells" not in point["acc"]  # the point's cells, once
    assert point["acc"]["ci"] == pytest.approx([0.945 - 0.0635310, 1.0], abs=1e-6)  # t(0.975, 1)
    assert setting["dense_latency_b64"] == 40.0
    (channel,) = data["metrics"]["acc"]["comparisons"]
    assert channel["significance"]["p_value"] is None  # two methods: no Friedman test
    assert data["methods"][1]["description"] == EVIL


def test_render_is_deterministic_and_replaces_stale_pages(tmp_path: Path) -> None:
    reports = _standard(tmp_path)
    render(reports, tmp_path / "site")
    first = {p: p.read_bytes() for p in (tmp_path / "site").rglob("*") if p.is_file()}
    render(reports, tmp_path / "site")
    assert {p: p.read_bytes() for p in (tmp_path / "site").rglob("*") if p.is_file()} == first
    for p in (reports / "synthetic" / "random").glob("*.json"):
        p.unlink()
    render(reports, tmp_path / "site")
    assert not (tmp_path / "site" / "methods" / "random.html").exists()


def test_refuses_to_replace_a_directory_it_did_not_render(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(XPruneError, match="is not empty and not a rendered site"):
        render(_standard(tmp_path), tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    render(_standard(tmp_path), tmp_path / "empty-dir")
    assert (tmp_path / "empty-dir" / MARKER).is_file()


def test_bad_reports_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="does not exist"):
        render(tmp_path / "nope", tmp_path / "site")
    reports = _reports(tmp_path, [make_record(method="bad name")])
    with pytest.raises(RecordError, match="method 'bad name' cannot be a file name"):
        render(reports, tmp_path / "site")


def test_method_styles_are_distinct_and_stable() -> None:
    from bench.plugins import declarations

    assert set(declarations().builtins()) == set(PINNED)  # every built-in method has pinned looks
    builtin = styles(PINNED)
    assert len({s.color for s in builtin.values()}) == len({s.marker for s in builtin.values()}) == 13
    assert set(COLORS) == {s.color for s in builtin.values()} and set(MARKER_NAMES) == {
        s.marker for s in builtin.values()}
    many = styles(list(PINNED) + [f"plugin-{i:03d}" for i in range(150)])
    assert all(many[k] == builtin[k] for k in PINNED)  # plugins never restyle the built-ins
    assert len({(s.color, s.marker) for s in many.values()}) == 163  # no two share colour and marker
    few = styles(["b-plugin", "a-plugin", "random"])
    assert few["random"] == builtin["random"] and few["a-plugin"] != few["b-plugin"]
    assert few["a-plugin"].color != few["b-plugin"].color  # the first plugins differ in colour
    assert styles(["a-plugin"]) == {"a-plugin": few["a-plugin"]}  # by name, whatever else exists
    assert builtin["magnitude"].at(10, 20) == "M10,20" + MARKERS["circle"]


# Machado, Oliveira & Fernandes 2009, severity 1.0, on linear RGB
DEUTERANOPIA = ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                (-0.011820, 0.042940, 0.968881))
PROTANOPIA = ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
              (-0.003882, -0.048116, 1.051998))


def _lab(hex_color: str, matrix: tuple | None = None) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB colour, optionally as a colour-vision deficiency sees it."""
    srgb = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in srgb]
    if matrix:
        lin = [min(max(sum(m * c for m, c in zip(row, lin)), 0.0), 1.0) for row in matrix]
    xyz = [sum(m * c for m, c in zip(row, lin)) / white for row, white in zip(
        ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750),
         (0.0193339, 0.1191920, 0.9503041)), (0.95047, 1.0, 1.08883))]
    f = [v ** (1 / 3) if v > 216 / 24389 else (24389 / 27 * v + 16) / 116 for v in xyz]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def test_method_colours_stay_apart_under_colour_vision_deficiency() -> None:
    """Every pair of the 13 colours differs by CIE76 ΔE >= 28 in normal vision and as
    deuteranopes and protanopes see them (the palette's documented minimum, 28.1); the old
    palette's ig and lrp-epsilon were 5.2 apart under deuteranopia."""
    import itertools
    import math

    worst = min(math.dist(_lab(a, m), _lab(b, m)) for a, b in itertools.combinations(COLORS, 2)
                for m in (None, DEUTERANOPIA, PROTANOPIA))
    assert len(set(COLORS)) == 13 and worst == pytest.approx(28.08, abs=0.01)
    assert math.dist(_lab("#2ca02c", DEUTERANOPIA), _lab("#d62728", DEUTERANOPIA)) < 10  # it bites
    muted = min(math.dist(_lab(c, m), _lab(MUTED, m)) for c in COLORS
                for m in (None, DEUTERANOPIA, PROTANOPIA))
    assert muted > 10  # a highlighted method never looks like the muted grey


def test_nice_ticks_and_scales_are_exact() -> None:
    assert nice_ticks(0.2, 0.8) == [0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(33.0, 95.5) == [20, 40, 60, 80, 100]
    assert nice_ticks(0.0, 0.64) == [0.0, 0.2, 0.4, 0.6, 0.8]  # raw step 0.128 -> 0.2
    assert nice_ticks(0.5, 0.5) == [0.47, 0.48, 0.49, 0.5, 0.51, 0.52, 0.53]
    ax = axes([0.2, 0.8], [30.0, 100.0], "x", "y")
    assert (ax["sx"](0.2), ax["sx"](0.5), ax["sx"](0.8)) == (58, 242, 426)  # 58..426
    assert (ax["sy"](20), ax["sy"](30), ax["sy"](100)) == (250, 220.25, 12)  # ticks 20..100
    assert [t["label"] for t in ax["x_ticks"]] == ["0.2", "0.4", "0.6", "0.8"]


def test_plot_geometry_bands_and_collapsed_points(tmp_path: Path) -> None:
    recs = []
    for seed in (0, 1):
        recs += curve({0.2: 0.9 - seed / 50, 0.8: 0.3}, dense_acc=1.0, seed=seed,
                      bal_acc=None if seed else 0.34)
    render(_reports(tmp_path, recs), tmp_path / "site")
    html = (tmp_path / "site" / "settings" / f"{SLUG}.acc.html").read_text()
    acc = html[html.index('id="plot-metric"'):html.index("</svg>", html.index('id="plot-metric"'))]
    # the main plot is the wide one: x 0.2..0.8 on 76..556; y ticks 20..100 on 302..12
    def y(v: float) -> str:
        return f"{round(302 - (v - 20) * 290 / 80, 2):g}"
    assert f'points="76,{y(89)} 556,{y(30)}"' in acc  # 89% -> 51.88, 30% -> 265.75
    assert 'class="ref dense" x1="76" x2="556" y1="12.0"' in acc  # the dense model at 100%
    assert '<text class="reflabel" x="560" y="16.0"' in acc  # labelled right of the frame
    half = 100 * T1 * 0.01  # seeds 90% and 88%: sd 1.414 points, t * sd / sqrt(2)
    assert f'points="76,{y(min(89 + half, 100))} 556,{y(30)} 556,{y(30)} 76,{y(89 - half)}"' in acc
    assert acc.count('class="pt collapsed"') == 2 and 'fill="#fff" stroke="#4b87ff"' in acc
    assert acc.count('href="#plot-metric-circle"') == 2  # magnitude's marker, defined once:
    assert acc.count(MARKERS["circle"]) == 1 and 'id="plot-metric-circle"' in acc
    assert '<g class="series hl" data-series="magnitude">' in acc  # the best: highlighted


def test_whiskers_stay_inside_the_axes() -> None:
    from bench.site.svg import Mark, series

    ax = axes([0.0, 10.0], [50.0, 90.0], "x", "y")  # x ticks 0..10 on 58..426, y 50..90
    out = series(ax, "m", styles(["magnitude"])["magnitude"],
                 [Mark(5.0, 70.0, "t", y_ci=(-20.0, 130.0), x_ci=(-4.0, 14.0))])
    assert out["whiskers"] == f"M242,{ax['sy'](50):g}V{ax['sy'](90):g}M58,{ax['sy'](70):g}H426"
    assert series(ax, "m", styles(["magnitude"])["magnitude"], [], highlight=False)["cls"] == \
        "series muted"


def test_record_page_shows_gpu_timings_when_a_record_has_them() -> None:
    from bench.site.recordpage import latency

    m = make_record()["metrics"]
    m["latency"]["gpu"] = {"hardware": "NVIDIA H100", "b1": m["latency"]["b1"], "b64": m["latency"]["b64"]}
    block = latency(m)
    assert block["hardware"] == "test CPU (x86_64), 1 thread; GPU: NVIDIA H100"
    assert [r["batch"] for r in block["rows"]] == ["CPU batch 1", "CPU batch 64", "GPU batch 1", "GPU batch 64"]
    assert block["rows"][3]["speedup"] == "1.9 [95% CI 1.71–2.1]"  # 40 ms / 21 ms


def test_templates_only_loop_and_print():
    """Geometry and numbers are computed in Python (bench/site/svg.py, bench/site/plots.py,
    bench/site/pages.py); a template expression is a name, an attribute or a filter, never
    arithmetic."""
    import re

    templates = Path(__file__).parent.parent / "leaderboard" / "templates"
    arithmetic = re.compile(r"{{[^}]*\s[-+*/%]\s[^}]*}}")
    found = [f"{path.name}: {m.group(0)}" for path in sorted(templates.glob("*.j2"))
             for m in arithmetic.finditer(path.read_text())]
    assert found == []


def test_a_method_gets_one_heatmap_picture_per_dataset_with_maps(tmp_path: Path) -> None:
    from bench.site.plots import method_heatmaps

    recs = [make_record(method="magnitude", dataset=d, sparsity=s, seed=0, scope="layer",
                        recovery="bnrecal", preserved=0.8, maps=True)
            for d in ("bloodmnist", "breastmnist") for s in (0.3, 0.5)]
    recs.append(make_record(method="random", dataset="bloodmnist", sparsity=0.5, preserved=0.5,
                            maps=True))
    pictures = method_heatmaps(recs, "magnitude", tmp_path)
    assert [name for name, _ in pictures] == ["heatmaps-magnitude-bloodmnist.png",
                                              "heatmaps-magnitude-breastmnist.png"]
    assert all((tmp_path / name).stat().st_size > 0 for name, _ in pictures)
    assert pictures[1][1].startswith("breastmnist · ")
    assert "sparsity 0.3, 0.5" in pictures[1][1] and "lrp-epf maps" in pictures[1][1]
    assert method_heatmaps(recs, "taylor", tmp_path) == []
