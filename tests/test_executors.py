"""Worker processes: a hanging plugin is killed at the timeout, a worker killed by the OS is
recorded with its signal, and the matrix carries on (the real CLI, real worker processes)."""

import os

import pytest

from bench import records
from conftest import BROKEN_PLUGINS, xprune


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    """One synthetic run with a plugin that hangs, one that kills its worker, and magnitude."""
    workdir = tmp_path_factory.mktemp("broken")
    env = {"XPRUNE_PLUGIN_PATH": os.pathsep.join(
        str(BROKEN_PLUGINS / f) for f in ("slow.py", "sigkill.py")),
        "XPRUNE_CACHE": str(workdir / "cache")}
    result = xprune("run", "--preset", "synthetic", "--granularities", "channel",
                    "--methods", "broken-slow,broken-sigkill,magnitude", "--workers", "1",
                    "--cell-timeout", "8", "--no-transparency", cwd=workdir, env=env)
    found = {r["cell"]["method"]: r
             for r in records.iter_records(workdir / "runs/synthetic/records")}
    return result, found


def test_hang_and_sigkill_fail_only_their_cells(broken_run):
    result, found = broken_run
    assert result.returncode == 1, result.stderr
    assert found["broken-slow"]["error"] == "scores failed: timed out after 8 s (worker killed)"
    assert found["broken-sigkill"]["error"] == "scores failed: worker process killed by SIGKILL"
    assert found["magnitude"]["status"] == "ok"  # the replacement worker carried on


def test_the_timeout_bounds_soundness_verdicts_too(broken_run):
    """A plugin that hangs (or kills its worker) while judged fails its verdict for this run;
    the judge never stalls the matrix, and the verdict travels in the records."""
    _, found = broken_run
    assert {m: r["method"]["soundness"] for m, r in found.items()} == {
        "broken-slow": "fail: timed out after 8 s (worker killed)",
        "broken-sigkill": "fail: worker process killed by SIGKILL",
        "magnitude": "pass"}
