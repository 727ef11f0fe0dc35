"""SlurmExecutor on a real single-node Slurm (slurmctld + slurmd + munge on localhost).

The cluster comes from .ci/start-slurm.sh --no-install (reused when already up). Where it
cannot start, every test here is skipped with the script's reason. No mocks: sbatch,
job arrays, squeue and scancel are the real ones.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import run_matrix

from bench.core.spec import BaselineKey, Spec
from bench.core.tasks import TrainBaseline
from bench.results import records
from bench.run import coordinator
from bench.run.executors import LocalExecutor
from bench.run.slurm import SlurmExecutor

REPO = Path(__file__).resolve().parent.parent
SPEC = Spec(name="slurm-test", datasets=("synthetic",), backbones=("smallcnn",),
            methods=("magnitude", "random"), scopes=("layer", "global"), epochs={"smallcnn": 2}, min_steps=0)
TIMINGS = {"latency", "score_seconds", "prune_seconds", "recover_seconds"}  # measured times


@pytest.fixture(scope="module")
def slurm_conf() -> Path:
    """SLURM_CONF of a running cluster; skip (printing why) when none can be started."""
    script = subprocess.run([str(REPO / ".ci" / "start-slurm.sh"), "--no-install"],
                            capture_output=True, text=True, timeout=120, check=False)
    lines = script.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("SLURM_CONF="):
        reason = (lines[-1] if lines else script.stderr.strip()) or "start-slurm.sh said nothing"
        print(reason)
        pytest.skip(reason)
    conf = Path(lines[-1].split("=", 1)[1])
    started_here = not any("reusing" in line for line in lines)
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    yield conf
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous
    if started_here:
        subprocess.run([str(REPO / ".ci" / "start-slurm.sh"), "stop"], timeout=60, check=False)


def _metrics(out: Path) -> dict[str, dict]:
    return {r["cell_hash"]: {k: v for k, v in r["metrics"].items() if k not in TIMINGS}
            for r in records.iter_records(out / "records") if r["status"] == "ok"}


def test_matrix_on_slurm_equals_local(slurm_conf: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)  # the Slurm jobs run with cpus=1 thread each
    local = coordinator.plan(SPEC, tmp_path / "local", tmp_path / "local-cache")
    assert run_matrix(local, LocalExecutor(tmp_path / "local-cache", workers=0))["ok"] == 4
    out = tmp_path / "slurm"
    plan = coordinator.plan(SPEC, out, tmp_path / "shared-cache")
    executor = SlurmExecutor(tmp_path / "shared-cache", out / "slurm", time_min=10, cpus=1,
                             poll=0.5, job_name="xprune-test")
    start = time.monotonic()
    counts = run_matrix(plan, executor)
    print(f"slurm matrix: {counts} in {time.monotonic() - start:.1f} s")
    assert counts == {"ok": 4}
    # the four stages really ran as Slurm array jobs: one log folder per array element
    # (baselines: the spec's and the soundness model; two verdicts; two score sets; four cells)
    logs = sorted(p.name for p in (out / "slurm").glob("*/*_0_log.out"))
    assert len(logs) == 2 + 2 + 2 + 4, logs
    assert list((tmp_path / "shared-cache" / "baselines").glob("*.pt"))  # trained on Slurm
    assert _metrics(out) == _metrics(tmp_path / "local")


def _cancel_when_queued(job_name: str) -> None:
    for _ in range(100):
        queued = subprocess.run(["squeue", "-h", "-n", job_name, "-o", "%i"],
                                capture_output=True, text=True, check=False).stdout.split()
        if queued:
            subprocess.run(["scancel", "-n", job_name], check=False)
            return
        time.sleep(0.2)


def test_cancelled_job_is_a_one_line_failure(slurm_conf: Path, tmp_path: Path) -> None:
    job_name = f"xprune-cancel-{os.getpid()}"
    executor = SlurmExecutor(tmp_path / "cache", tmp_path / "slurm", time_min=5,
                             extra={"hold": True}, poll=0.5, job_name=job_name)
    task = TrainBaseline(BaselineKey("synthetic", 28, "smallcnn", seed=0, epochs=1))
    canceller = threading.Thread(target=_cancel_when_queued, args=(job_name,))
    canceller.start()
    results: list = []
    executor.run([task], lambda t, outcome: results.append((t, outcome)))
    canceller.join()
    assert len(results) == 1 and results[0][0] == task
    outcome = results[0][1]
    assert outcome.ok is False and "\n" not in outcome.error
    assert outcome.error.startswith("slurm job ") and "CANCELLED" in outcome.error
