"""verify(): re-running published cells from scratch reproduces them; a tampered number is caught.

A real two-cell matrix (synthetic data, smallcnn, magnitude and random) is run inline,
published with bench.results.publish, then verified: every cell is recomputed in a fresh cache, the
baseline retrained and the scores recomputed, so the test needs a deterministic engine.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import run_matrix
from recordfactory import make_metrics, make_record

from bench.core.errors import RecordError
from bench.core.spec import Spec
from bench.results.publish import publish
from bench.results.verify import VerifyError, compare, sample_records, verify
from bench.run import coordinator
from bench.run.executors import LocalExecutor

SPEC = Spec(name="verify-test", datasets=("synthetic",), backbones=("smallcnn",),
            methods=("magnitude", "random"), epochs={"smallcnn": 2}, min_steps=0)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published reports/ folder holding the two cells' records."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("verify")
    plan = coordinator.plan(SPEC, root / "run", root / "cache")
    counts = run_matrix(plan, LocalExecutor(root / "cache", workers=0))
    assert counts["ok"] == 2, counts
    publish(root / "run", to=root / "reports")
    return root / "reports"


def _copy(reports: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(reports, tmp_path / "reports"))


def test_published_records_verify(published: Path, tmp_path: Path) -> None:
    report = verify(published, tolerance=0.0, cache_dir=tmp_path)
    assert report.ok, (f"re-running the same cells from scratch changed their metrics "
                       f"(engine nondeterminism):\n{report}")
    assert (len(report.checked), report.total, report.exit_code) == (2, 2, 0)
    assert str(report).endswith(f"verified 2 of 2 record(s) in {published} (tolerance 0, "
                               "speed-up within x2, latency within x5, each re-run on its own "
                               "device kind (cpu)): ok")
    assert list(tmp_path.iterdir()) == []  # the fresh cache is removed afterwards


def test_tampered_accuracy_is_the_one_mismatch(published: Path, tmp_path: Path) -> None:
    reports = _copy(published, tmp_path)
    path = min(reports.rglob("*.json"))
    record = json.loads(path.read_text())
    old = record["metrics"]["recovered"]["acc"]
    record["metrics"]["recovered"]["acc"] = old + 0.2
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
    report = verify(reports, tolerance=1e-3, cache_dir=tmp_path / "cache")
    assert report.exit_code == 1 and not report.failures
    assert [(m.cell_hash, m.field, m.published, m.rerun) for m in report.mismatches] == [
        (record["cell_hash"], "recovered.acc", old + 0.2, old)]
    assert f"recovered.acc published {old + 0.2!r}, re-run {old!r}" in str(report)
    assert str(report).endswith("1 mismatch(es), 0 failure(s)")


def test_sample_is_seeded_and_bounded(published: Path) -> None:
    everything, total = sample_records(published, None, seed=0)
    first, _ = sample_records(published, 1, seed=3)
    assert total == 2 and len(everything) == 2 and len(first) == 1
    assert sample_records(published, 1, seed=3)[0] == first
    assert {r["cell_hash"] for r in first} < {r["cell_hash"] for r in everything}
    assert sample_records(published, 10, seed=0)[0] == everything


def test_compare_rules() -> None:
    base = make_metrics(0.8, 0.9, 0.5, preserved=0.7)
    close = json.loads(json.dumps(base))
    close["recovered"]["acc"] += 5e-4
    close["transparency"]["ig"]["spearman"] += 5e-4
    close["latency"]["b1"]["dense_ms"], close["score_seconds"] = 9.0, 9.0  # timings are ignored
    assert compare(base, close, 1e-3) == []
    close["params"], close["pruned"]["auc"] = 51, None
    close["transparency"]["lrp-epf"]["iou_top10"] = 0.9
    assert compare(base, close, 1e-3) == [("pruned.auc", 0.9, None), ("params", base["params"], 51),
                                          ("transparency.lrp-epf.iou_top10", 0.35, 0.9)]


def test_a_metric_added_to_the_schema_is_compared_by_verify_and_shown_on_its_record_page(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One list of metric fields, the schema's: a task score and a single-value metric added
    to it are compared by verify and printed on the record page, with no other edit."""
    import copy

    from bench.results import records
    from bench.site.recordpage import SHOWN, record_context

    schema = copy.deepcopy(records.SCHEMA)
    metrics = schema["properties"]["metrics"]["oneOf"][1]["properties"]
    for stage in records.SCORE_BLOCKS:
        metrics[stage]["properties"]["brier"] = {"type": "number"}
    metrics["energy_j"] = {"type": "number"}
    monkeypatch.setitem(records.SCHEMAS, records.SCHEMA_VERSION, schema)

    record = make_record()
    for stage in records.SCORE_BLOCKS:
        record["metrics"][stage]["brier"] = 0.125
    record["metrics"]["energy_j"] = 2.5
    rerun = json.loads(json.dumps(record["metrics"]))
    rerun["recovered"]["brier"], rerun["energy_j"] = 0.25, 3.0
    assert compare(record["metrics"], rerun, 1e-3) == [("recovered.brier", 0.125, 0.25),
                                                       ("energy_j", 2.5, 3.0)]
    page = record_context(record, "setting.html", "method.html")
    assert {"label": "brier", "cells": ["0.125", "0.125", "0.125"]} in page["scores"]
    assert ("energy j", "2.5") in page["other"]  # labelled in words, as every field is
    assert SHOWN <= records.metric_names()  # the page's sections name schema fields only


def test_user_errors_are_one_line(tmp_path: Path, published: Path) -> None:
    with pytest.raises(RecordError, match="does not exist"):
        verify(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordError, match="holds no ok records"):
        verify(tmp_path / "empty")
    with pytest.raises(VerifyError, match="--sample must be at least 1"):
        verify(published, sample=0)
    for tolerance in (-1.0, float("inf"), float("nan")):
        with pytest.raises(VerifyError, match="--tolerance must be a finite, non-negative number"):
            verify(published, tolerance=tolerance)
