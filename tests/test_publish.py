"""publish(): layout, idempotence, conflicts, failed records and provenance checks.

The run directories here hold constructed records (tests/recordfactory.py) written with
bench.results.records.write, exactly as the runner writes real ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from recordfactory import curve, make_record, variant

from bench.core.errors import RecordError
from bench.results import records
from bench.results.publish import publish, record_path


def _run(tmp_path: Path, recs: list[dict], name: str = "run") -> Path:
    directory = tmp_path / name / "records"
    for r in recs:
        records.write(directory, r)
    return tmp_path / name


def test_publish_writes_stable_layout_and_counts(tmp_path: Path) -> None:
    recs = curve({0.2: 0.9, 0.5: 0.8}) + [make_record(status="failed", method="taylor")]
    summary = publish(_run(tmp_path, recs), to=tmp_path / "reports")
    assert (len(summary.written), len(summary.unchanged), summary.skipped_failed) == (2, 0, 1)
    for r in recs[:2]:
        path = tmp_path / "reports" / "synthetic" / "smallcnn" / "magnitude" / f"{r['cell_hash']}.json"
        assert path in summary.written
        assert path.read_text() == json.dumps(r, indent=2, sort_keys=True) + "\n"
    assert not (tmp_path / "reports" / "synthetic" / "smallcnn" / "taylor").exists()
    assert str(summary) == (f"published to {tmp_path / 'reports'}: 2 written, 0 unchanged, "
                            "1 failed record(s) skipped")


def test_publish_is_idempotent(tmp_path: Path) -> None:
    run = _run(tmp_path, curve({0.2: 0.9, 0.5: 0.8}))
    publish(run, to=tmp_path / "reports")
    before = {p: p.read_bytes() for p in (tmp_path / "reports").rglob("*.json")}
    again = publish(run, to=tmp_path / "reports")
    assert (len(again.written), len(again.unchanged)) == (0, 2)
    assert {p: p.read_bytes() for p in (tmp_path / "reports").rglob("*.json")} == before


def test_conflict_is_refused_atomically_unless_forced(tmp_path: Path) -> None:
    a, b = curve({0.2: 0.9, 0.5: 0.8})
    publish(_run(tmp_path, [a], "first"), to=tmp_path / "reports")
    changed = variant(a, {"metrics.recovered.acc": 0.5})
    run = _run(tmp_path, [changed, b], "second")
    with pytest.raises(RecordError, match=r"^conflict: .* already holds a different record"):
        publish(run, to=tmp_path / "reports")
    assert records.read(record_path(tmp_path / "reports", a)) == a
    assert not record_path(tmp_path / "reports", b).exists()  # nothing written on refusal
    forced = publish(run, to=tmp_path / "reports", force=True)
    assert (len(forced.replaced), len(forced.written)) == (1, 1)
    assert records.read(record_path(tmp_path / "reports", a)) == changed
    assert "1 replaced (--force)" in str(forced)


def test_schema_invalid_record_is_refused(tmp_path: Path) -> None:
    run = _run(tmp_path, curve({0.5: 0.9}))
    bad = next(run.rglob("*.json"))
    data = json.loads(bad.read_text())
    del data["metrics"]["macs"]
    bad.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="invalid record at metrics"):
        publish(run, to=tmp_path / "reports")
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("change, message", [
    ({"provenance.git_commit": ""}, "provenance.git_commit is missing or empty"),
    ({"provenance.versions": {}}, r"provenance.versions \(library versions\) is missing"),
    ({"provenance.xprune_version": None}, "provenance.xprune_version is missing"),
    ({"cell.sparsity": 0.6}, "does not match its cell"),
    ({"method.name": "other"}, "differs from cell.method"),
])
def test_missing_provenance_or_wrong_hash_is_refused(tmp_path: Path, change: dict, message: str) -> None:
    run = _run(tmp_path, [variant(make_record(), change)])
    with pytest.raises(RecordError, match=message):
        publish(run, to=tmp_path / "reports")


def test_unsafe_names_never_become_paths(tmp_path: Path) -> None:
    rec = make_record(method="../../escape")
    with pytest.raises(RecordError, match="method '../../escape' cannot be a file name"):
        publish(_run(tmp_path, [rec]), to=tmp_path / "reports")
    assert not any(tmp_path.rglob("escape*"))


def test_missing_or_empty_run_dir(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="does not exist"):
        publish(tmp_path / "nope", to=tmp_path / "reports")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordError, match="holds no records"):
        publish(tmp_path / "empty", to=tmp_path / "reports")


def test_only_failed_records_publishes_nothing(tmp_path: Path) -> None:
    summary = publish(_run(tmp_path, [make_record(status="failed")]), to=tmp_path / "reports")
    assert (summary.written, summary.skipped_failed) == ([], 1)


def test_records_subfolder_is_preferred_over_other_run_files(tmp_path: Path) -> None:
    run = _run(tmp_path, curve({0.5: 0.9}))
    (run / "spec.json").write_text('{"not": "a record"}')
    assert len(publish(run, to=tmp_path / "reports").written) == 1
    assert len(publish(run / "records", to=tmp_path / "reports2").written) == 1
    with pytest.raises(RecordError, match="spec.json: invalid record"):
        publish(tmp_path, to=tmp_path / "reports3")  # no records/ here: every JSON must be one


def _real(record: dict) -> dict:
    """A factory record made consistent with the real BreastMNIST entry of the registry."""
    from bench.compute import data

    return variant(record, {"dataset.task": "binary-class", "dataset.n_classes": 2,
                            "dataset.synthetic": False,
                            "dataset.md5": data.expected_md5("breastmnist", 28)})


def test_a_consistent_real_dataset_record_is_published(tmp_path: Path) -> None:
    rec = _real(make_record(dataset="breastmnist"))
    assert len(publish(_run(tmp_path, [rec]), to=tmp_path / "reports").written) == 1


@pytest.mark.parametrize("record, change, message", [
    ("synthetic", {"dataset.synthetic": False},
     "dataset.synthetic is False but synthetic is synthetic data; refusing to publish it as real"),
    ("real", {"dataset.synthetic": True},
     "dataset.synthetic is True but breastmnist is real data; refusing to publish it as synthetic"),
    ("real", {"dataset.md5": "0" * 32},
     "dataset.md5 '00000000000000000000000000000000' is not the official breastmnist.npz"),
    ("real", {"dataset.flag": "pneumoniamnist"},
     "dataset.flag 'pneumoniamnist' differs from cell.dataset 'breastmnist'"),
    ("real", {"dataset.n_classes": 3}, "dataset task/classes 'binary-class'/3 differ"),
])
def test_a_dataset_block_that_disagrees_with_the_registry_is_refused(
        tmp_path: Path, record: str, change: dict, message: str) -> None:
    base = make_record() if record == "synthetic" else _real(make_record(dataset="breastmnist"))
    with pytest.raises(RecordError, match=re.escape(message)):
        publish(_run(tmp_path, [variant(base, change)]), to=tmp_path / "reports")
    assert not (tmp_path / "reports").exists()


def _place(reports: Path, record: dict) -> Path:
    """A record already published (as an earlier protocol's publish left it)."""
    path = record_path(reports, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def test_a_newer_protocol_retires_the_older_records_of_its_setting_and_method(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    old_same = [_place(reports, make_record(schema=2, sparsity=s, seed=1)) for s in (0.3, 0.9)]
    old_other_method = _place(reports, make_record(schema=2, sparsity=0.3, method="taylor"))
    old_other_scope = _place(reports, make_record(schema=2, sparsity=0.3, scope="global"))
    new = curve({0.05: 0.9, 0.3: 0.8})
    summary = publish(_run(tmp_path, new), to=reports)
    assert sorted(summary.retired) == sorted(old_same)
    assert not any(p.exists() for p in old_same)
    assert old_other_method.exists() and old_other_scope.exists()
    assert len(summary.written) == 2
    assert str(summary).endswith("2 written, 0 unchanged, 2 older-protocol record(s) of the "
                                 "same settings retired, 0 failed record(s) skipped")


def test_a_refused_publish_retires_nothing(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    old = _place(reports, make_record(schema=2, sparsity=0.3))
    new = curve({0.05: 0.9})
    _place(reports, variant(new[0], {"metrics.recovered.acc": 0.1}))  # a conflicting record
    with pytest.raises(RecordError, match="conflict"):
        publish(_run(tmp_path, new), to=reports)
    assert old.exists()
