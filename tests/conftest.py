"""Shared test setup: real MedMNIST files from XPRUNE_DATA_ROOT, isolated working folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.compute import kernels

# The tests compute with the product's pinned kernels (bench.compute.kernels), like the CLI,
# local workers and Slurm jobs do: set before any test module's first tensor operation, and
# inherited by every worker and scoring process the tests start.
kernels.pin()

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "medmnist"
BROKEN_PLUGINS = Path(__file__).parent / "fixtures" / "broken_plugins"

if not os.environ.get("XPRUNE_DATA_ROOT") and SHARED_DATA.is_dir():
    os.environ["XPRUNE_DATA_ROOT"] = str(SHARED_DATA)
os.environ["XPRUNE_OFFLINE"] = "1"  # tests never try to download


def real_data_available(flag: str = "breastmnist") -> bool:
    root = os.environ.get("XPRUNE_DATA_ROOT")
    return bool(root) and (Path(root) / f"{flag}.npz").is_file()


needs_real_data = pytest.mark.skipif(
    not real_data_available(), reason="MedMNIST files not found: set XPRUNE_DATA_ROOT")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working folder (mlflow.db, runs/ and the cache land here)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XPRUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def cli(capsys, monkeypatch):
    """Call the real ``xprune`` entry point in-process: returns (exit code, stdout, stderr)."""
    def call(*args: str) -> tuple[int, str, str]:
        from bench.cli import main

        monkeypatch.setattr(sys, "argv", ["xprune", *args])
        with pytest.raises(SystemExit) as exc:
            main()
        captured = capsys.readouterr()
        return exc.value.code, captured.out, captured.err
    return call


def run_matrix(plan, executor) -> dict:
    """``coordinator.run`` as a library caller would: real MLflow (a SQLite file beside the run)."""
    from bench.run import coordinator
    from bench.run.tracking import Tracker

    uri = f"sqlite:///{plan.out.parent / 'mlflow.db'}"
    tracker = Tracker(plan.spec.name, plan.spec.name, {}, uri=uri)
    counts = coordinator.run(plan, executor, tracker, coordinator.SilentProgress())
    tracker.finish()
    return counts


def xprune(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300,
           ) -> subprocess.CompletedProcess:
    """Run the real command line in a subprocess, as a user would (``env`` values of None
    remove the variable)."""
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def vit():
    """The built-in ViT (1 input channel, 3 classes), seeded initial weights, eval mode."""
    import torch

    from bench.compute import models

    torch.manual_seed(0)
    return models.build("vit", 1, 3).eval()
