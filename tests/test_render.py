"""render(): pages, escaping, leaderboard.json, record links, SVG geometry, output safety.

All sites here are rendered from constructed records (tests/recordfactory.py), never
from a real run; they live in pytest's tmp_path and are not committed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from recordfactory import curve, make_record

from bench import records
from bench.errors import RecordError, XPruneError
from bench.plots import axes, nice_ticks
from bench.render import MARKER, render

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def _reports(root: Path, recs: list[dict]) -> Path:
    for r in recs:
        records.write(root / "reports" / r["cell"]["dataset"] / r["cell"]["method"], r)
    return root / "reports"


def _standard(tmp_path: Path) -> Path:
    recs = []
    for seed in (0, 1):
        recs += curve({0.2: 0.95 - seed / 100, 0.5: 0.9, 0.8: 0.8}, method="magnitude", seed=seed)
        recs += curve({0.2: 0.9, 0.5: 0.6, 0.8: 0.3}, method="random", seed=seed, description=EVIL)
    recs += [make_record(status="failed", method="taylor")]
    return _reports(tmp_path, recs)


def test_render_writes_every_page(tmp_path: Path) -> None:
    summary = render(_standard(tmp_path), tmp_path / "site")
    site = tmp_path / "site"
    names = sorted(str(p.relative_to(site)) for p in summary.pages)
    slug = "synthetic-28-smallcnn-channel-layer-bnrecal-e10-r10-m0"
    assert names == ["index.html", "leaderboard.json", "methods/magnitude.html",
                     "methods/random.html", f"settings/{slug}.html"]
    assert (summary.records, summary.skipped_failed) == (12, 1)
    assert str(summary).startswith(f"rendered 5 page(s) from 12 record(s) into {site}")
    assert (site / "static" / "style.css").is_file() and (site / "static" / "sort.js").is_file()
    assert len(list((site / "records").glob("*.json"))) == 12


def test_hostile_description_is_escaped_and_javascript_urls_not_linked(tmp_path: Path) -> None:
    recs = curve({0.5: 0.9}, method="random", description=EVIL)
    recs[0]["method"]["reference"] = "javascript:alert(3)"
    render(_reports(tmp_path, recs), tmp_path / "site")
    html = (tmp_path / "site" / "methods" / "random.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html
    assert "<script>alert" not in html and "<img" not in html
    assert 'href="javascript:' not in html and "javascript:alert(3)" in html


def test_https_reference_is_linked(tmp_path: Path) -> None:
    render(_reports(tmp_path, curve({0.5: 0.9})), tmp_path / "site")
    html = (tmp_path / "site" / "methods" / "magnitude.html").read_text()
    assert '<a href="https://arxiv.org/abs/1608.08710">' in html


def test_leaderboard_json_holds_the_numbers_and_their_cells(tmp_path: Path) -> None:
    render(_standard(tmp_path), tmp_path / "site")
    data = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    (setting,) = data["settings"]
    assert setting["best"] == [["magnitude", "1"]] and data["skipped_failed"] == 1
    mag = setting["rows"][0]
    # mean curve 0.945, 0.9, 0.8 -> (0.3*0.9225 + 0.3*0.85) / 0.6 = 0.88625
    assert mag["area"]["mean"] == pytest.approx(0.88625) and mag["area"]["seeds"] == [0, 1]
    assert mag["points"][0]["acc"]["mean"] == pytest.approx(0.945)
    assert mag["points"][0]["acc"]["std"] == pytest.approx(0.00707106781)
    assert len(mag["points"][0]["acc"]["cells"]) == 2
    assert mag["points"][0]["acc"]["ci"] == pytest.approx([0.945 - 0.0635310, 0.945 + 0.0635310],
                                                          abs=1e-6)  # t(0.975, 1) = 12.7062
    (channel,) = data["comparisons"]
    assert channel["significance"]["methods"] == ["magnitude", "random"]
    assert channel["significance"]["p_value"] is None  # two methods: no Friedman test
    assert data["methods"][1]["description"] == EVIL


def test_every_cited_record_is_in_the_site(tmp_path: Path) -> None:
    render(_standard(tmp_path), tmp_path / "site")
    page = next((tmp_path / "site" / "settings").glob("*.html"))
    html = page.read_text()
    cited = set(re.findall(r'href="\.\./records/([0-9a-f]{16})\.json"', html))
    published = {p.stem for p in (tmp_path / "reports").rglob("*.json")
                 if records.read(p)["status"] == "ok"}
    assert cited == published
    assert "94.5 [88.1–100.9]" in html  # ACC@0.2 of magnitude: seeds 95% and 94%, 95% t-interval
    assert html.count('<a class="rec" href="#points">points</a>') == 2  # each curve area
    method = (tmp_path / "site" / "methods" / "magnitude.html").read_text()
    assert set(re.findall(r'href="\.\./records/([0-9a-f]{16})\.json"', method)) == {
        p.stem for p in (tmp_path / "reports" / "synthetic" / "magnitude").glob("*.json")}


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


def test_nice_ticks_and_scales_are_exact() -> None:
    assert nice_ticks(0.2, 0.8) == [0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(33.0, 95.5) == [20, 40, 60, 80, 100]
    assert nice_ticks(0.0, 0.64) == [0.0, 0.2, 0.4, 0.6, 0.8]  # raw step 0.128 -> 0.2
    assert nice_ticks(0.5, 0.5) == [0.47, 0.48, 0.49, 0.5, 0.51, 0.52, 0.53]
    ax = axes([0.2, 0.8], [30.0, 100.0], "x", "y")
    assert (ax["sx"](0.2), ax["sx"](0.5), ax["sx"](0.8)) == (58, 274, 490)
    assert (ax["sy"](20), ax["sy"](30), ax["sy"](100)) == (294, 259, 14)  # ticks 20..100
    assert [t["label"] for t in ax["x_ticks"]] == ["0.2", "0.4", "0.6", "0.8"]


def test_plot_geometry_in_page(tmp_path: Path) -> None:
    render(_reports(tmp_path, curve({0.2: 0.9, 0.8: 0.3}, dense_acc=1.0)), tmp_path / "site")
    html = next((tmp_path / "site" / "settings").glob("*.html")).read_text()
    # x: 0.2..0.8 on 58..490; y ticks 20..100 on 294..14: 90% -> 49, 30% -> 259
    assert 'points="58.0,49.0 490.0,259.0"' in html
    assert 'class="ref" x1="58" x2="490" y1="14.0"' in html  # the dense model at 100%
