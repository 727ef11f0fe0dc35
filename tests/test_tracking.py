"""MLflow worth opening: a real ``mlflow server`` (127.0.0.1, a free port, a temporary SQLite
store), one real ``xprune run`` against it, and everything read back through its REST API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, xprune

EPOCHS = 5  # the synthetic preset's smallcnn baseline
CELLS = 4  # magnitude and random x 0.3 and 0.6, channel


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, path: str, **query) -> dict:
    url = f"{base}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{base}/api/2.0/mlflow/{path}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mlflow server`` on a free local port; yields its base URL."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'store.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        cwd=root, stdout=subprocess.DEVNULL, stderr=open(root / "server.log", "w"),
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=5).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield base
    os.killpg(proc.pid, 15)
    proc.wait(30)


@pytest.fixture(scope="module")
def tracked(server, tmp_path_factory):
    """A parent left RUNNING by a dead coordinator, then one real run: the runs by kind."""
    folder = tmp_path_factory.mktemp("tracked")
    env = {"MLFLOW_TRACKING_URI": server, "XPRUNE_CACHE": str(folder / "cache")}
    dead = subprocess.run(
        [sys.executable, "-c", "from bench.run.tracking import Tracker; "
         "print(Tracker('xprune/synthetic', 'dead', {}).parent_id)"],
        cwd=folder, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert dead.returncode == 0, dead.stderr
    result = xprune("run", "--preset", "synthetic", "--methods", "magnitude,random",
                    "--granularities", "channel", "--sparsities", "0.3,0.6", "--workers", "0",
                    cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    experiment = _get(server, "experiments/get-by-name", experiment_name="xprune/synthetic")
    exp_id = experiment["experiment"]["experiment_id"]
    runs = _post(server, "runs/search", {"experiment_ids": [exp_id], "max_results": 1000})["runs"]
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
    by_kind: dict[str, list] = {"parent": [], "dead": [], "baseline": [], "cell": []}
    for run, tag in zip(runs, tags):
        run["tags"] = tag
        run["metrics"] = {m["key"]: m for m in run["data"].get("metrics", [])}
        if run["info"]["run_id"] == dead.stdout.strip():
            by_kind["dead"].append(run)
        elif tag.get("xprune.kind") == "matrix":
            by_kind["parent"].append(run)
        elif "xprune.baseline_hash" in tag:
            by_kind["baseline"].append(run)
        elif "xprune.cell_hash" in tag:
            by_kind["cell"].append(run)
    return {"experiment": experiment["experiment"], "runs": by_kind, "server": server}


def test_experiment_is_namespaced_and_opens_on_runs(tracked):
    tags = {t["key"]: t["value"] for t in tracked["experiment"]["tags"]}
    assert tracked["experiment"]["name"] == "xprune/synthetic"
    assert tags["mlflow.experimentKind"] == "custom_model_development"


def test_parent_run_carries_source_versions_and_summary(tracked):
    (parent,) = tracked["runs"]["parent"]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    assert parent["info"]["status"] == "FINISHED"
    assert parent["tags"]["mlflow.source.name"] == "xprune run"
    assert parent["tags"]["mlflow.source.git.commit"] == commit
    assert parent["tags"]["version.torch"] and parent["tags"]["xprune.pid"].isdigit()
    metrics = {k: m["value"] for k, m in parent["metrics"].items()}
    assert (metrics["cells_ok"], metrics["cells_failed"], metrics["cells_total"]) == (CELLS, 0, CELLS)
    assert metrics["wall_seconds"] > 0
    assert {"area.magnitude", "area.random"} <= set(metrics)


def test_parent_run_has_the_summary_table_artifact(tracked):
    (parent,) = tracked["runs"]["parent"]
    files = _get(tracked["server"], "artifacts/list", run_id=parent["info"]["run_id"])["files"]
    assert [f["path"] for f in files] == ["summary.md"]


def test_baseline_run_has_its_training_curve_as_step_metrics(tracked):
    (baseline,) = tracked["runs"]["baseline"]
    assert baseline["tags"]["mlflow.parentRunId"] == tracked["runs"]["parent"][0]["info"]["run_id"]
    for key in ("loss", "val.acc", "val.auc"):
        history = _get(tracked["server"], "metrics/get-history",
                       run_id=baseline["info"]["run_id"], metric_key=key)["metrics"]
        assert sorted(int(m.get("step", 0)) for m in history) == list(range(1, EPOCHS + 1))
    assert "test.acc" in baseline["metrics"]


def test_cell_runs_have_real_timestamps_and_source_tags(tracked):
    cells = tracked["runs"]["cell"]
    assert len(cells) == CELLS
    started = tracked["runs"]["parent"][0]["info"]["start_time"]
    for run in cells:
        assert all(int(m["timestamp"]) >= int(started) for m in run["metrics"].values())
        assert run["tags"]["mlflow.source.name"] == "xprune run"


def test_a_dead_coordinators_parent_is_marked_killed(tracked):
    (dead,) = tracked["runs"]["dead"]
    assert dead["info"]["status"] == "KILLED"
    assert dead["tags"]["xprune.end"].startswith(f"coordinator pid {dead['tags']['xprune.pid']} ")


def test_showcase_cells_carry_the_heatmap_picture(tracked):
    with_maps, without = [], []
    for run in tracked["runs"]["cell"]:
        files = {f["path"] for f in _get(tracked["server"], "artifacts/list",
                                        run_id=run["info"]["run_id"]).get("files", [])}
        (with_maps if "heatmaps.png" in files else without).append(run["data"]["params"])
    sparsity = lambda params: {p["key"]: p["value"] for p in params}["sparsity"]  # noqa: E731
    assert with_maps and {sparsity(p) for p in with_maps} == {"0.3"}  # a showcase sparsity
    assert {sparsity(p) for p in without} == {"0.6"}
    metrics = tracked["runs"]["cell"][0]["metrics"]
    assert "transparency.lrp-epf.spearman" in metrics and "recovered.ece" in metrics
