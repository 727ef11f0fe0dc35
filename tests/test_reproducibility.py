"""Reproducibility: the weight digest, the pinned kernels, baselines that travel, and a verify
that tells a different baseline (hardware) from the same one.

A real synthetic matrix (smallcnn, magnitude, two seeds) is run on one spawned worker, so its
records come from a process the engine pinned, then published and verified.
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from conftest import run_matrix, xprune
from recordfactory import make_record, variant

from bench.compute import kernels
from bench.compute.baseline import ArchiveError, digest, export, import_archive
from bench.core.errors import RecordError
from bench.core.spec import Spec
from bench.results.publish import publish
from bench.results.records import validate
from bench.results.verify import (
    HARDWARE,
    SAME,
    VerifyReport,
    comparison,
    judge,
    seed_interval,
    statistical,
    verify,
)
from bench.run import coordinator
from bench.run.executors import LocalExecutor

SPEC = Spec(name="repro-test", datasets=("synthetic",), backbones=("smallcnn",),
            methods=("magnitude",), sparsities=(0.5,), seeds=(0, 1), epochs={"smallcnn": 2},
            min_steps=0)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-seed run (records, cache, published reports) computed on one worker."""
    root = tmp_path_factory.mktemp("repro")
    plan = coordinator.plan(SPEC, root / "run", root / "cache")
    with LocalExecutor(root / "cache", workers=1) as executor:
        counts = run_matrix(plan, executor)
    assert counts["ok"] == 2, counts
    publish(root / "run", to=root / "reports")
    return root


def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.rglob("*.json"))]


# --- the digest -------------------------------------------------------------------------------

def test_digest_ignores_key_order_and_sees_every_bit_dtype_and_shape() -> None:
    state = {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
             "b.num_batches_tracked": torch.tensor(7)}
    same = dict(reversed(list(state.items())))
    flipped = {**state, "a.weight": state["a.weight"].clone()}
    flipped["a.weight"].view(torch.int32)[0, 0] ^= 1  # one bit of one float
    as_int = {**state, "a.weight": state["a.weight"].view(torch.int32)}  # same bytes, other dtype
    reshaped = {**state, "a.weight": state["a.weight"].reshape(3, 2)}
    assert digest(same) == digest(state)
    assert len({digest(x) for x in (state, flipped, as_int, reshaped)}) == 4
    assert len(digest(state)) == 64


def test_records_carry_the_digest_of_the_cached_baseline(run: Path) -> None:
    entries = {p.stem: torch.load(p, weights_only=False)
               for p in (run / "cache" / "baselines").glob("*.pt")}
    records = _records(run / "run" / "records")
    assert len(records) == 2
    for record in records:
        entry = entries[record["provenance"]["baseline_hash"]]
        assert record["provenance"]["baseline_digest"] == entry["digest"] \
            == digest(entry["state_dict"])
        assert "baseline_digest" not in record["metrics"] and "kernels" not in record["metrics"]


# --- the kernels ------------------------------------------------------------------------------

def test_worker_records_say_the_kernels_were_pinned(run: Path) -> None:
    for record in _records(run / "run" / "records"):
        k = record["provenance"]["kernels"]
        assert (k["pinned"], k["cpu_capability"], k["env"]) == (True, "AVX2", kernels.PIN)
        assert k["cpu_model"] == kernels.cpu_model() != "unknown"
        assert k["blas"].startswith(("mkl ", "openblas")) and k["onednn"]


def _capability(env: dict[str, str], code: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in (*kernels.PIN, kernels.OPT_OUT)}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env,
                          "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


def test_pin_overrides_the_environment_before_the_first_operation() -> None:
    code = ("from bench.compute import kernels; kernels.pin(); import torch; "
            "print(torch.backends.cpu.get_cpu_capability(), kernels.settings()['pinned'])")
    assert _capability({"ATEN_CPU_CAPABILITY": "default"}, code) == "AVX2 True"
    own = _capability({}, "import torch; print(torch.backends.cpu.get_cpu_capability())")
    # opted out: the machine's own capability, and not "pinned" (even on an AVX2-only CPU)
    assert _capability({kernels.OPT_OUT: "1"}, code) == f"{own} False"


def test_slurm_jobs_export_the_pin_before_python_starts() -> None:
    from bench.run.slurm import SlurmExecutor

    params = SlurmExecutor(Path("cache"), Path("slurm")).parameters()
    assert params["setup"] == ["export ATEN_CPU_CAPABILITY=avx2",
                               "export ONEDNN_MAX_CPU_ISA=AVX2", "export MKL_CBWR=AVX2,STRICT"]


# --- the schema -------------------------------------------------------------------------------

def test_schema_3_requires_the_digest_and_kernels_and_schema_2_stays_valid() -> None:
    assert validate(make_record(schema=2))["schema_version"] == 2
    record = make_record()
    assert record["schema_version"] == 3
    for missing in ("baseline_digest", "kernels"):
        broken = copy.deepcopy(record)
        del broken["provenance"][missing]
        with pytest.raises(RecordError, match=f"'{missing}' is a required property"):
            validate(broken)
    with pytest.raises(RecordError, match="provenance/baseline_digest"):
        validate(variant(record, {"provenance.baseline_digest": "abc"}))


# --- baselines that travel --------------------------------------------------------------------

def test_export_then_import_copies_every_baseline_bit_for_bit(run: Path, tmp_path: Path) -> None:
    archive = tmp_path / "baselines.tar.gz"
    manifest = export(run / "cache", archive)
    assert [e["file"] for e in manifest["entries"]] == sorted(
        p.name for p in (run / "cache" / "baselines").glob("*.pt"))
    n = len(manifest["entries"])
    assert import_archive(archive, tmp_path / "fresh") == {"added": n, "identical": 0,
                                                           "replaced": 0}
    for entry in manifest["entries"]:
        name = entry["file"]
        assert (tmp_path / "fresh" / "baselines" / name).read_bytes() == \
            (run / "cache" / "baselines" / name).read_bytes()
    assert import_archive(archive, tmp_path / "fresh")["identical"] == n


def _rewrite(archive: Path, out: Path, change) -> Path:
    """A copy of ``archive`` with ``change(name, bytes) -> bytes`` applied to each member."""
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    with tarfile.open(out, "w:gz") as tar:
        for name, blob in members.items():
            blob = change(name, blob)
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return out


def test_a_tampered_or_corrupted_archive_is_refused(run: Path, tmp_path: Path) -> None:
    archive = tmp_path / "good.tar.gz"
    export(run / "cache", archive)

    def flip(name: str, blob: bytes) -> bytes:
        return blob[:-100] + bytes([blob[-100] ^ 1]) + blob[-99:] if name.endswith(".pt") else blob

    def reweigh(name: str, blob: bytes) -> bytes:  # new weights, manifest sha256 updated too
        if not name.endswith(".pt"):
            return blob
        entry = torch.load(io.BytesIO(blob), weights_only=True)
        first = next(iter(entry["state_dict"]))
        entry["state_dict"][first] = entry["state_dict"][first] + 1
        buf = io.BytesIO()
        torch.save(entry, buf)
        return buf.getvalue()

    flipped = _rewrite(archive, tmp_path / "flipped.tar.gz", flip)
    with pytest.raises(ArchiveError, match="does not match its manifest sha256"):
        import_archive(flipped, tmp_path / "c1")
    import hashlib

    reweighed = _rewrite(archive, tmp_path / "reweighed.tar.gz", reweigh)
    with tarfile.open(reweighed) as tar:
        blobs = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    manifest = json.loads(blobs["manifest.json"])
    for e in manifest["entries"]:
        e["sha256"] = hashlib.sha256(blobs[f"baselines/{e['file']}"]).hexdigest()
    consistent = _rewrite(reweighed, tmp_path / "consistent.tar.gz",
                          lambda n, b: json.dumps(manifest).encode() if n == "manifest.json" else b)
    with pytest.raises(ArchiveError, match="weights do not match their manifest digest"):
        import_archive(consistent, tmp_path / "c2")
    assert not (tmp_path / "c1").exists() and not (tmp_path / "c2").exists()  # nothing written
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    result = xprune("baselines", "import", str(tmp_path / "junk.tar.gz"), "--cache",
                    str(tmp_path / "c3"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "not a readable archive" in result.stderr


def test_cli_exports_and_imports(run: Path, tmp_path: Path) -> None:
    archive = tmp_path / "b.tar.gz"
    n = len(list((run / "cache" / "baselines").glob("*.pt")))
    done = xprune("baselines", "export", str(archive), "--cache", str(run / "cache"),
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"exported {n} baseline(s) from {run / 'cache'} to {archive}" in done.stdout
    done = xprune("baselines", "import", str(archive), "--cache", str(tmp_path / "c"),
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"imported {n} baseline(s)" in done.stdout and f"{n} added" in done.stdout


# --- verify: which comparison ----------------------------------------------------------------

def test_same_digest_is_compared_tightly_and_says_so(run: Path, tmp_path: Path) -> None:
    # the command line pins its own kernels, as the worker that made the records did
    done = xprune("verify", "--reports", str(run / "reports"), "--tolerance", "0", "--cache",
                  str(tmp_path), cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = sorted(line for line in done.stdout.splitlines() if line.startswith("compared "))
    assert lines == sorted(
        f"compared {r['cell_hash']}: {SAME} (digest {r['provenance']['baseline_digest'][:12]}): "
        "every field within 0" for r in _records(run / "reports"))
    assert done.stdout.strip().endswith("): ok")


def test_an_unpinned_rerun_is_a_different_baseline_checked_statistically(
        run: Path, tmp_path: Path) -> None:
    # verify with this CPU's own kernels (the pin removed, opted out): the re-trained
    # baselines are other bits than the pinned worker's, as on another machine
    own = _capability({}, "import torch; print(torch.backends.cpu.get_cpu_capability())")
    if own == kernels.PINNED_CAPABILITY:
        pytest.skip("this CPU's own kernels are the pinned ones (AVX2): no other bits to test")
    native = {**dict.fromkeys(kernels.PIN), kernels.OPT_OUT: "1"}
    reports = Path(shutil.copytree(run / "reports", tmp_path / "reports"))

    def verify_natively() -> subprocess.CompletedProcess:
        return xprune("verify", "--reports", str(reports), "--tolerance", "0", "--cache",
                      str(tmp_path / "c"), cwd=tmp_path, env=native, timeout=900)

    done = verify_natively()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("compared ")]
    assert len(lines) == len(_records(reports)) and all(line.endswith(
        f"{HARDWARE}: checked statistically (within the 99% seed prediction interval of the "
        "re-run and 1 other published seed(s))") for line in lines), lines
    assert "tampered" not in done.stdout
    path = min(reports.rglob("*.json"))  # a number no seed allows is a mismatch of that branch
    record = json.loads(path.read_text())
    record["metrics"]["recovered"]["acc"] = 7.0
    path.write_text(json.dumps(record))
    done = verify_natively()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "recovered.acc" in done.stdout and "outside seed interval" in done.stdout


def test_one_seed_and_a_different_digest_is_a_failure_not_ok() -> None:
    record = make_record(seed=0)
    report = VerifyReport(Path("reports"), 1, 0.001)

    class OneSeed:
        def of(self, r: dict) -> list[dict]:
            return [record]

    judge(record, {**record["metrics"], "baseline_digest": "e" * 64}, "label", report, OneSeed())
    assert report.comparisons[record["cell_hash"]] == f"{HARDWARE}: not checkable"
    assert not report.ok and "no other published seed" in report.failures[0]


def test_comparison_is_decided_by_the_digest() -> None:
    record = make_record()
    assert comparison(record, "d" * 64) == SAME
    assert comparison(record, "e" * 64) == HARDWARE
    assert comparison(variant(record, {"provenance.baseline_digest": None}), None) == HARDWARE


def test_seed_interval_is_the_student_t_prediction_interval() -> None:
    low, high = seed_interval([0.8, 0.9, 1.0], tolerance=0.0)
    # t(0.995, 2) = 9.9248, s = 0.1, sqrt(1 + 1/3) = 1.1547
    assert (round(low, 4), round(high, 4)) == (round(0.9 - 1.14602, 4), round(0.9 + 1.14602, 4))
    assert seed_interval([0.5, 0.5], tolerance=0.01) == (0.49, 0.51)
    assert seed_interval([0.5], tolerance=0.01) is None


def test_statistical_names_each_field_outside_the_interval() -> None:
    seeds = [make_record(acc=a, seed=s) for s, a in enumerate((0.20, 0.81, 0.82))]
    rerun = copy.deepcopy(seeds[1]["metrics"])
    rerun["recovered"]["acc"] = 0.815  # the honest re-run of seed 0, whose record says 0.20
    found = statistical(seeds[0], rerun, seeds, tolerance=0.001)
    # recovered: interval of 0.81, 0.82, 0.815 = 0.815 ± 9.9248 · 0.005 · sqrt(4/3); the
    # factory's pruned accuracy is 0.05 lower, 0.15 for seed 0, against 0.76, 0.77, 0.76
    assert [(f, round(old, 4), new, round(lo, 4), round(hi, 4))
            for f, old, new, lo, hi in found] == [
        ("pruned.acc", 0.15, 0.76, 0.6972, 0.8295), ("recovered.acc", 0.20, 0.815, 0.7577, 0.8723)]
    assert statistical(seeds[1], rerun, seeds, tolerance=0.001) == []


def test_verify_with_exported_baselines_uses_their_bits(run: Path, tmp_path: Path) -> None:
    archive = tmp_path / "b.tar.gz"
    export(run / "cache", archive)
    # the published bits, re-run here unpinned: the cells agree within the tight default
    # tolerance (measured: differences up to 1e-5 in ece and explanation agreement)
    report = verify(run / "reports", cache_dir=tmp_path / "c", baselines=archive)
    assert report.ok, str(report)
    assert len(report.comparisons) == 2
    assert all(v.startswith(f"{SAME} (digest ") for v in report.comparisons.values())


def test_a_protocol_2_record_says_it_has_no_digest_and_is_not_rerun(tmp_path: Path) -> None:
    record = make_record(schema=2)
    folder = tmp_path / "reports" / "synthetic"
    folder.mkdir(parents=True)
    (folder / f"{record['cell_hash']}.json").write_text(json.dumps(record))
    report = verify(tmp_path / "reports", cache_dir=tmp_path / "c")
    assert report.checked == [] and report.comparisons == {} and not report.ok
    assert report.failures == [
        f"{record['cell_hash']}: no digest (protocol 2 record), a schema 2 record (an earlier "
        "protocol, unpinned kernels) cannot be re-run by this engine (schema 3); republish it "
        "first"]
