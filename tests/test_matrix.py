"""The matrix runner end to end: the real CLI, worker processes, records, SQLite MLflow."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import BROKEN_PLUGINS, xprune
from mlflow.tracking import MlflowClient

from bench.core import paths
from bench.core.spec import Cell
from bench.results import records
from bench.run.folder import OutputLock

SMALL = ["--preset", "synthetic", "--methods", "magnitude,random", "--sparsities", "0.3,0.6"]
N_CELLS = 2 * 2 * 2  # methods x granularities (channel, weight) x sparsities
N_TASKS = 2 + 4 + 4 + N_CELLS  # baselines (spec, soundness model), verdicts, score sets, cells
ONE_CELL = ["--preset", "synthetic", "--methods", "magnitude", "--granularities", "channel",
            "--no-transparency"]  # transparency is the subject of the small run only


def mlflow_runs(folder):
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name("xprune/synthetic")
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    parents = [r for r in runs if r.data.tags.get("xprune.kind") == "matrix"]
    children = [r for r in runs if "xprune.cell_hash" in r.data.tags]
    return parents, children


def load_records(folder):
    return [records.read(p) for p in sorted((folder / "runs/synthetic/records").glob("*.json"))]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """One finished run of SMALL (stdout not a terminal): (folder, completed process)."""
    folder = tmp_path_factory.mktemp("small")
    result = xprune("run", *SMALL, "--workers", "1", cwd=folder, env={
        "XPRUNE_CACHE": str(folder / "cache"), "XPRUNE_PROGRESS_SECONDS": "2",
        "MLFLOW_TRACKING_URI": ""})
    assert result.returncode == 0, result.stderr
    return folder, result


def test_a_run_writes_one_ok_record_and_one_mlflow_child_per_cell(small_run):
    folder, _ = small_run
    recs = load_records(folder)
    assert len(recs) == N_CELLS and {r["status"] for r in recs} == {"ok"}
    parents, children = mlflow_runs(folder)
    assert len(parents) == 1
    assert sorted(c.data.tags["xprune.cell_hash"] for c in children) == sorted(
        r["cell_hash"] for r in recs)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    child = children[0]
    assert child.data.params["dataset"] == "synthetic"
    assert "recovered.acc" in child.data.metrics and "params" in child.data.metrics
    first = recs[0]["metrics"]
    assert first["params"] < first["params_dense"] and first["macs"] < first["macs_dense"]


def test_off_a_terminal_progress_is_one_plain_line_per_finished_task(small_run):
    _, result = small_run
    line = re.compile(r"^\[\s*(\d+)/(\d+)\] (\d+) ok, (\d+) failed, \d+:\d\d:\d\d elapsed, "
                      r"eta \S+ \| (done|ok) \S+")
    done = [m.groups() for m in map(line.match, result.stderr.splitlines()) if m]
    assert [int(d[0]) for d in done] == list(range(1, N_TASKS + 1))
    assert done[-1][1:4] == (str(N_TASKS), str(N_CELLS), "0")
    assert "\x1b[" not in result.stderr  # no terminal control sequences in a log


def test_the_end_of_a_run_says_where_to_go_next(small_run):
    _, result = small_run
    lines = result.stdout.splitlines()
    assert lines[lines.index("next:"):] == [
        "next:", "  xprune publish runs/synthetic", "  xprune leaderboard",
        "  mlflow ui --backend-store-uri sqlite:///mlflow.db",
        "  open http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning"]
    assert max(len(x) for x in lines) <= 80


def test_a_finished_matrix_reruns_from_its_records_alone_without_an_mlflow_run(small_run):
    folder, _ = small_run
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "runs/synthetic/records").glob("*")}
    runs_before = mlflow_runs(folder)
    again = xprune("run", *SMALL, "--workers", "1", cwd=folder,
                   env={"XPRUNE_CACHE": str(folder / "cache"), "MLFLOW_TRACKING_URI": ""})
    assert again.returncode == 0, again.stderr
    assert (f"nothing to do: all {N_CELLS} cells have records in runs/synthetic/records"
            in again.stdout)
    assert {p.name: p.stat().st_mtime_ns
            for p in (folder / "runs/synthetic/records").glob("*")} == before
    parents, children = mlflow_runs(folder)
    assert [r.info.run_id for r in parents + children] == [
        r.info.run_id for r in runs_before[0] + runs_before[1]]


def test_records_carry_provenance(small_run):
    rec = load_records(small_run[0])[0]
    prov = rec["provenance"]
    assert prov["versions"]["torch"] and prov["versions"]["torch-pruning"]
    cell = Cell.from_dict(rec["cell"])
    assert prov["baseline_hash"] == cell.baseline.hash and prov["score_hash"] == cell.scores.hash
    assert rec["cell_hash"] == cell.hash
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", prov["git_commit"])
    assert rec["method"]["source"] in ("methods/magnitude.py", "methods/random.py")
    assert rec["method"]["soundness"] == "pass"
    assert rec["metrics"]["latency"]["hardware"].endswith("1 thread")
    assert rec["cell"]["transparency"] is True
    assert set(rec["metrics"]["transparency"]["explainers"]) == {"lrp-epf", "ig"}
    assert rec["dataset"]["synthetic"] is True
    json.dumps(rec, allow_nan=False)


def test_dry_run_prints_the_plan_table_and_writes_nothing(workdir):
    result = xprune("run", *SMALL, "--dry-run", cwd=workdir)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "plan: synthetic -> runs/synthetic"
    row = next(x for x in lines if x.startswith(" synthetic") or x.startswith("synthetic"))
    assert row.split()[:8] == ["synthetic", "smallcnn", "2", str(N_CELLS), "0", str(N_CELLS),
                               "1", "new"]
    assert f"{N_CELLS} cells: 0 finished, {N_CELLS} to run; estimate" in result.stdout
    assert max(len(x) for x in lines) <= 80
    assert sorted(p.name for p in workdir.iterdir()) == ["cache"] or not list(workdir.iterdir())


def test_an_unreadable_record_is_ignored_and_its_cell_planned_again(workdir, caplog):
    from bench.core.spec import load_spec, override
    from bench.run import coordinator

    spec = override(load_spec("synthetic"), methods=["random"], granularities=["channel"])
    folder = workdir / "runs" / "synthetic" / "records"
    folder.mkdir(parents=True)
    (folder / "0123456789abcdef.json").write_text("{not json")
    plan = coordinator.plan(spec, folder.parent, workdir / "cache")
    assert len(plan.todo) == len(plan.cells) == 1
    assert "ignoring unreadable record" in caplog.text


def test_a_second_run_on_a_busy_output_folder_exits_2_naming_the_holder(workdir):
    with OutputLock(workdir / "runs" / "synthetic"):
        result = xprune("run", *ONE_CELL, cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"error: output folder runs/synthetic is in use by another xprune run (pid {os.getpid()} "
        f"on {socket.gethostname()}, started ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (workdir / "mlflow.db").exists()
    assert not (workdir / "runs" / "synthetic" / "records").exists()


def test_unreadable_cache_entries_are_discarded_and_recomputed(workdir):
    assert xprune("run", *ONE_CELL, "--workers", "0", cwd=workdir).returncode == 0
    (record,) = load_records(workdir)
    cell = Cell.from_dict(record["cell"])  # the cell's own entries (the soundness model has one too)
    baseline = paths.baseline(cell.baseline, workdir / "cache")
    scores = paths.scores(cell.scores, workdir / "cache")
    baseline.write_bytes(baseline.read_bytes()[: baseline.stat().st_size // 2])  # truncated
    scores.write_bytes(b"")  # zero bytes
    for record in (workdir / "runs/synthetic/records").glob("*.json"):
        record.unlink()
    again = xprune("run", *ONE_CELL, "--workers", "1", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert [r["status"] for r in load_records(workdir)] == ["ok"]
    assert again.stderr.count("discarding unreadable cache entry") == 2
    assert baseline.stat().st_size > 0 and scores.stat().st_size > 0


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
    resumed = xprune(*["run", *args], cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    recs = load_records(workdir)
    assert len(recs) == total and len({r["cell_hash"] for r in recs}) == total
    assert not list(folder.glob(".tmp-*"))
    parents, children = mlflow_runs(workdir)
    hashes = [c.data.tags["xprune.cell_hash"] for c in children]
    assert sorted(hashes) == sorted(r["cell_hash"] for r in recs)  # none missing, none twice
    # the killed coordinator's parent run is not left RUNNING forever
    assert sorted(p.info.status for p in parents) == ["FINISHED", "KILLED"]
    assert "marked 1 MLflow run(s) of dead coordinators KILLED" in resumed.stderr


def test_a_run_plans_its_matrix_once(workdir, cli, monkeypatch):
    """The real ``xprune run`` path, start to finish: the matrix is expanded and its plan table
    derived once; under the output folder's lock only the records are read again."""
    from bench.run import coordinator

    calls = {"expand": 0, "rows": 0, "scan": 0}

    def counted(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(coordinator, "expand", counted("expand", coordinator.expand))
    monkeypatch.setattr(coordinator.Plan, "rows", counted("rows", coordinator.Plan.rows))
    monkeypatch.setattr(coordinator, "_scan_records", counted("scan", coordinator._scan_records))
    code, out, err = cli("run", *ONE_CELL, "--workers", "0")
    assert code == 0, err
    assert "done: 1 ok, 0 failed this run" in out
    assert calls == {"expand": 1, "rows": 1, "scan": 2}
