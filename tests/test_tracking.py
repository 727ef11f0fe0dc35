"""MLflow worth opening: a real ``mlflow server`` (127.0.0.1, a free port, a temporary SQLite
store), one real ``xprune run`` against it, everything read back through its REST API, and
its UI driven in headless Chromium (screenshots in test-artifacts/)."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, xprune

from bench.results import records

EPOCHS = 5  # the synthetic preset's smallcnn baseline
CELLS = 4  # magnitude and random x 0.3 and 0.6, channel
STEPS = [30, 60]  # the sparsities x 100


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
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:  # it waits for the browser's open connections
        os.killpg(proc.pid, signal.SIGKILL)
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
    by_kind: dict[str, list] = {"parent": [], "dead": [], "baseline": [], "cell": [],
                                "setting": [], "curve": []}
    for run, tag in zip(runs, tags):
        run["tags"] = tag
        run["metrics"] = {m["key"]: m for m in run["data"].get("metrics", [])}
        if run["info"]["run_id"] == dead.stdout.strip():
            by_kind["dead"].append(run)
        elif tag.get("xprune.kind") == "matrix":
            by_kind["parent"].append(run)
        elif tag.get("xprune.kind") in ("setting", "curve"):
            by_kind[tag["xprune.kind"]].append(run)
        elif "xprune.baseline_hash" in tag:
            by_kind["baseline"].append(run)
        elif "xprune.cell_hash" in tag:
            by_kind["cell"].append(run)
    recs = {r["cell_hash"]: r for r in map(records.read, sorted(
        (folder / "runs/synthetic/records").glob("*.json")))}
    return {"experiment": experiment["experiment"], "runs": by_kind, "server": server,
            "records": recs, "cache": folder / "cache"}


def _history(tracked, run, key: str) -> list[tuple[int, float, int]]:
    """A run's metric history as (step, value, timestamp), by step."""
    metrics = _get(tracked["server"], "metrics/get-history", run_id=run["info"]["run_id"],
                   metric_key=key)["metrics"]
    return sorted((int(m.get("step", 0)), m["value"], int(m["timestamp"])) for m in metrics)


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
    areas = {k for k in metrics if k.startswith("area.")}
    assert areas == {"area.channel.magnitude", "area.channel.random"}  # per granularity
    assert parent["tags"]["mlflow.note.content"].startswith(f"One `xprune run`: {CELLS} cells ok")


def test_parent_run_has_the_summary_table_artifact(tracked):
    (parent,) = tracked["runs"]["parent"]
    files = _get(tracked["server"], "artifacts/list", run_id=parent["info"]["run_id"])["files"]
    assert [f["path"] for f in files] == ["summary.md"]


def test_baseline_run_has_its_training_curve_as_step_metrics(tracked):
    (baseline,) = tracked["runs"]["baseline"]
    assert baseline["tags"]["mlflow.parentRunId"] == tracked["runs"]["parent"][0]["info"]["run_id"]
    for key in ("loss", "val.acc", "val.auc"):
        history = _history(tracked, baseline, key)
        assert [step for step, _, _ in history] == list(range(1, EPOCHS + 1))
        times = [t for _, _, t in history]
        assert times == sorted(times) and times[0] > int(baseline["info"]["start_time"])
    assert "test.acc" in baseline["metrics"]


def test_baseline_run_spans_its_training(tracked):
    (baseline,) = tracked["runs"]["baseline"]
    start, end = int(baseline["info"]["start_time"]), int(baseline["info"]["end_time"])
    trained = baseline["metrics"]["train_seconds"]["value"]
    assert abs((end - start) - trained * 1000) <= 1
    entry = next((tracked["cache"] / "baselines").glob(f"{baseline['tags']['xprune.baseline_hash']}*.pt"))
    assert abs(end - entry.stat().st_mtime * 1000) <= 1  # ends when its cache entry was written


def test_baseline_run_lists_its_dataset_and_its_model(tracked):
    (baseline,) = tracked["runs"]["baseline"]
    (given,) = baseline["inputs"]["dataset_inputs"]
    assert given["tags"] == [{"key": "mlflow.data.context", "value": "train"}]
    assert json.loads(given["dataset"]["profile"]) == {
        "train": 600, "val": 150, "test": 300, "classes": 3, "task": "multi-class",
        "md5": "generated"}
    (output,) = baseline["outputs"]["model_outputs"]
    model = _get(tracked["server"], f"logged-models/{output['model_id']}")["model"]
    assert model["info"]["name"] == f"baseline-{baseline['tags']['xprune.baseline_hash']}"
    assert model["info"]["source_run_id"] == baseline["info"]["run_id"]


def test_the_logged_baseline_model_loads_and_matches_its_signature(tracked, monkeypatch):
    import mlflow
    import mlflow.pytorch
    import torch

    (baseline,) = tracked["runs"]["baseline"]
    (output,) = baseline["outputs"]["model_outputs"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracked["server"])
    mlflow.set_tracking_uri(tracked["server"])
    uri = f"models:/{output['model_id']}"
    signature = mlflow.models.get_model_info(uri).signature
    assert signature.inputs.inputs[0].shape == (-1, 1, 28, 28)
    assert signature.outputs.inputs[0].shape == (-1, 3)
    model = mlflow.pytorch.load_model(uri)
    with torch.no_grad():
        assert tuple(model(torch.zeros(2, 1, 28, 28)).shape) == (2, 3)


def test_cell_runs_span_their_measured_time_and_name_their_dataset(tracked):
    cells = tracked["runs"]["cell"]
    assert len(cells) == CELLS
    for run in cells:
        rec = tracked["records"][run["tags"]["xprune.cell_hash"]]
        end = int(datetime.datetime.fromisoformat(rec["provenance"]["created"]).timestamp() * 1000)
        assert int(run["info"]["end_time"]) == end
        assert int(run["info"]["start_time"]) == end - int(rec["provenance"]["seconds"] * 1000)
        assert {int(m["timestamp"]) for m in run["metrics"].values()} == {end}
        assert run["metrics"]["recovered.bal_acc"]["value"] == rec["metrics"]["recovered"]["bal_acc"]
        assert run["tags"]["mlflow.source.name"] == "xprune run"
        assert run["tags"]["mlflow.note.content"].startswith(f"**{rec['cell']['method']}** v")
        (given,) = run["inputs"]["dataset_inputs"]
        assert given["dataset"]["name"] == "synthetic-28"
        assert given["tags"] == [{"key": "mlflow.data.context", "value": "test"}]


def test_each_setting_has_one_curve_run_per_method_stepped_by_sparsity(tracked):
    (setting,) = tracked["runs"]["setting"]
    curves = tracked["runs"]["curve"]
    assert setting["tags"]["mlflow.parentRunId"] == tracked["runs"]["parent"][0]["info"]["run_id"]
    assert {c["tags"]["mlflow.parentRunId"] for c in curves} == {setting["info"]["run_id"]}
    methods = [{p["key"]: p["value"] for p in c["data"]["params"]}["method"] for c in curves]
    assert sorted(methods) == ["magnitude", "random"]
    for curve, method in zip(curves, methods):
        expected = sorted((round(r["cell"]["sparsity"] * 100), r["metrics"]["recovered"]["bal_acc"])
                          for r in tracked["records"].values() if r["cell"]["method"] == method)
        assert [(s, v) for s, v, _ in _history(tracked, curve, "bal_acc")] == expected
        for key in ("auc", "acc"):
            assert [s for s, _, _ in _history(tracked, curve, key)] == STEPS
    assert "dense.bal_acc" in setting["metrics"] and "chance" in setting["metrics"]
    assert "chart `bal_acc`" in setting["tags"]["mlflow.note.content"]


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


CHROMIUM = os.environ.get("XPRUNE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
UI_WAIT_MS = 120_000  # the UI's first load on a busy machine


@pytest.fixture(scope="module")
def ui(tracked):
    """Headless Chromium on the server's UI (what ``mlflow ui`` serves), 1400 px wide."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not installed at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update"])
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(UI_WAIT_MS)
        yield page
        browser.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def _run_page(tracked, run, tab: str = "") -> str:
    from bench.run.tracking import UI_QUERY

    exp = tracked["experiment"]["experiment_id"]
    return (f"{tracked['server']}/#/experiments/{exp}/runs/{run['info']['run_id']}"
            f"{tab}?{UI_QUERY}")


def test_the_printed_address_opens_the_experiment_on_its_runs(tracked, ui):
    from bench.run.tracking import ui_url

    ui.goto(ui_url(tracked["experiment"]["experiment_id"], tracked["server"]))
    total = sum(len(runs) for runs in tracked["runs"].values())
    ui.get_by_text(f"{total} matching runs").wait_for()  # the runs table, not GenAI's pages
    assert ui.get_by_text("xprune/synthetic").count() > 0
    _shot(ui, "mlflow-runs-1400.png")


def test_a_curve_run_charts_balanced_accuracy_against_sparsity_steps(tracked, ui):
    curve = tracked["runs"]["curve"][0]
    with ui.expect_response(lambda r: "get-history-bulk-interval" in r.url
                            and "metric_key=bal_acc" in r.url) as answer:
        ui.goto(_run_page(tracked, curve, "/model-metrics"))
    steps = sorted(int(m["step"]) for m in answer.value.json()["metrics"])
    assert steps == STEPS  # what the page's chart plots
    ui.get_by_text("Step", exact=True).first.wait_for()
    _shot(ui, "mlflow-curve-1400.png")


def test_a_baseline_run_page_lists_its_dataset_and_logged_model(tracked, ui):
    (baseline,) = tracked["runs"]["baseline"]
    ui.goto(_run_page(tracked, baseline))
    ui.get_by_text("synthetic-28", exact=False).first.wait_for()
    model = f"baseline-{baseline['tags']['xprune.baseline_hash']}"
    assert ui.get_by_text("Dense smallcnn trained on synthetic", exact=False).count() == 1
    _shot(ui, "mlflow-baseline-1400.png")
    listed = ui.get_by_text("Logged models").first
    listed.scroll_into_view_if_needed()
    ui.get_by_text(model, exact=True).first.wait_for()
    _shot(ui, "mlflow-baseline-model-1400.png")
