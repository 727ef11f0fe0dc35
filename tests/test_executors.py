"""Worker and scoring processes: a hanging plugin is stopped at the timeout, a plugin that
kills its scoring process is recorded with its signal, a worker killed by the OS is replaced,
and the matrix carries on (the real CLI, real worker and scoring processes)."""

import os

import pytest
from conftest import BROKEN_PLUGINS, xprune

from bench.results import records


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
    assert found["broken-slow"]["error"] == (
        "scores failed: broken-slow: score() did not finish within 8 s (process killed)")
    assert found["broken-sigkill"]["error"] == (
        "scores failed: broken-sigkill: the scoring process ended (killed by SIGKILL) without "
        "returning scores")
    assert found["magnitude"]["status"] == "ok"  # the worker itself never ran the plugin


def test_the_timeout_bounds_soundness_verdicts_too(broken_run):
    """A plugin that hangs (or kills its scoring process) while judged fails its verdict;
    the judge never stalls the matrix, and the verdict travels in the records."""
    _, found = broken_run
    assert {m: r["method"]["soundness"] for m, r in found.items()} == {
        "broken-slow": "fail: broken-slow: score() did not finish within 8 s (process killed)",
        "broken-sigkill": "fail: broken-sigkill: the scoring process ended (killed by SIGKILL) "
                          "without returning scores",
        "magnitude": "pass"}


def test_a_worker_killed_mid_task_is_replaced(tmp_path):
    """The OS killing a worker (not a plugin: plugins never run in workers) fails that task
    alone with the signal, and a fresh worker runs the next."""
    import signal
    import threading

    from bench.core.tasks import JudgeSoundness
    from bench.run.executors import LocalExecutor

    done = []
    with LocalExecutor(tmp_path, workers=1) as executor:
        def kill_when_busy():
            while not (executor._pool and executor._pool[0].task):
                threading.Event().wait(0.05)
            os.kill(executor._pool[0].process.pid, signal.SIGKILL)
        threading.Thread(target=kill_when_busy, daemon=True).start()
        executor.run([JudgeSoundness("magnitude", "channel")],
                     lambda task, outcome: done.append(outcome))
    assert [(o.ok, o.error) for o in done] == [(False, "worker process killed by SIGKILL")]
