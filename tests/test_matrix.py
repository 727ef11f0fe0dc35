"""The matrix runner end to end: the real CLI, worker processes, records, SQLite MLflow."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from bench import records
from conftest import BROKEN_PLUGINS, xprune

SMALL = ["--preset", "synthetic", "--methods", "magnitude,random", "--sparsities", "0.3,0.6"]
N_CELLS = 2 * 2 * 2  # methods x granularities (channel, weight) x sparsities


def mlflow_runs(folder):
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name("synthetic")
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    parents = [r for r in runs if r.data.tags.get("xprune.kind") == "matrix"]
    children = [r for r in runs if "xprune.cell_hash" in r.data.tags]
    return parents, children


def load_records(folder):
    return [records.read(p) for p in sorted((folder / "runs/synthetic/records").glob("*.json"))]


def test_a_run_writes_one_ok_record_and_one_mlflow_child_per_cell(workdir):
    result = xprune("run", *SMALL, "--workers", "1", cwd=workdir)
    assert result.returncode == 0, result.stderr
    recs = load_records(workdir)
    assert len(recs) == N_CELLS and {r["status"] for r in recs} == {"ok"}
    parents, children = mlflow_runs(workdir)
    assert len(parents) == 1
    assert sorted(c.data.tags["xprune.cell_hash"] for c in children) == sorted(
        r["cell_hash"] for r in recs)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    child = children[0]
    assert child.data.params["dataset"] == "synthetic"
    assert "recovered.acc" in child.data.metrics and "params" in child.data.metrics
    first = recs[0]["metrics"]
    assert first["params"] < first["params_dense"] and first["macs"] < first["macs_dense"]


def test_running_again_recomputes_nothing(workdir):
    assert xprune("run", *SMALL, "--workers", "0", cwd=workdir).returncode == 0
    before = {p.name: p.stat().st_mtime_ns
              for p in (workdir / "runs/synthetic/records").glob("*.json")}
    start = time.monotonic()
    again = xprune("run", *SMALL, "--workers", "1", cwd=workdir)
    assert again.returncode == 0
    assert f"{N_CELLS} finished, 0 to run" in again.stdout.replace("\n", " ")
    assert time.monotonic() - start < 60
    after = {p.name: p.stat().st_mtime_ns
             for p in (workdir / "runs/synthetic/records").glob("*.json")}
    assert after == before
    _, children = mlflow_runs(workdir)
    assert len(children) == N_CELLS


def test_failing_plugins_fail_their_cells_and_the_rest_finish(workdir):
    env = {"XPRUNE_PLUGIN_PATH": os.pathsep.join(
        str(BROKEN_PLUGINS / f) for f in ("raises.py", "nan.py", "shape.py"))}
    result = xprune("run", "--preset", "synthetic", "--granularities", "channel",
                    "--methods", "magnitude,broken-raises,broken-nan,broken-shape",
                    "--workers", "1", cwd=workdir, env=env)
    assert result.returncode == 1  # some cells failed
    by_method = {r["cell"]["method"]: r for r in load_records(workdir)}
    assert by_method["magnitude"]["status"] == "ok"
    assert by_method["broken-raises"]["error"] == (
        "scores failed: broken-raises: score() raised ValueError: deliberate failure")
    assert "scores contain NaN or infinity" in by_method["broken-nan"]["error"]
    assert "expected shape (16,), got (15,)" in by_method["broken-shape"]["error"]
    assert {r["status"] for m, r in by_method.items() if m != "magnitude"} == {"failed"}
    assert "Traceback" not in result.stderr


def test_sigkill_midway_then_resume_gives_exactly_one_record_and_run_per_cell(workdir):
    args = ["--preset", "synthetic", "--methods", "magnitude,random,taylor",
            "--sparsities", "0.2,0.4,0.6,0.8", "--workers", "1"]
    total = 3 * 2 * 4
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "run", *args], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    folder = workdir / "runs/synthetic/records"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(folder.glob("*.json"))) < 3:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # coordinator and its worker, mid-matrix
    proc.wait()
    done_before = len(list(folder.glob("*.json")))
    assert 3 <= done_before < total
    resumed = xprune("run", *args, cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    recs = load_records(workdir)
    assert len(recs) == total and len({r["cell_hash"] for r in recs}) == total
    assert not list(folder.glob(".tmp-*"))
    _, children = mlflow_runs(workdir)
    hashes = [c.data.tags["xprune.cell_hash"] for c in children]
    assert sorted(hashes) == sorted(r["cell_hash"] for r in recs)  # none missing, none twice


def test_dry_run_plans_without_running(workdir):
    result = xprune("run", *SMALL, "--dry-run", cwd=workdir)
    assert result.returncode == 0
    text = result.stdout.replace("\n", " ")
    assert f"{N_CELLS} cells, 0 finished, {N_CELLS} to run" in text
    assert "1 baselines to train" in text and "estimated" in text
    assert not (workdir / "runs").exists() and not (workdir / "mlflow.db").exists()


def test_records_carry_provenance(workdir):
    assert xprune("run", *SMALL, "--workers", "0", cwd=workdir).returncode == 0
    rec = load_records(workdir)[0]
    prov = rec["provenance"]
    assert prov["versions"]["torch"] and prov["versions"]["torch-pruning"]
    assert prov["git_commit"] and prov["baseline_hash"] == rec["provenance"]["baseline_hash"]
    assert rec["method"]["source"] in ("methods/magnitude.py", "methods/random.py")
    assert rec["dataset"]["synthetic"] is True
    json.dumps(rec, allow_nan=False)
