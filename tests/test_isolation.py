"""A submitted plugin is untrusted code: it scores in its own process and changes nothing else.

Each test writes real hostile plugins to a temporary folder and runs the real engine on them
(the command line in a subprocess, real scoring processes, the synthetic dataset)."""

from __future__ import annotations

import os
import time

import pytest
import torch
from conftest import xprune

from bench.check import check
from bench.compute import sandbox
from bench.results import records

MAGNITUDE_SCORE = '''
    granularities = ("channel", "weight")
    needs_data = False

    def score(self, model, sites, batch):
        out = {}
        for site in sites:
            w = site.weight.detach().abs()
            out[site.name] = w if site.granularity == "weight" else w.flatten(1).sum(1)
        return out
'''


def plugin(name: str, at_import: str = "", score: str = MAGNITUDE_SCORE) -> str:
    """A plugin file: ``at_import`` runs when it is imported; it scores like magnitude."""
    return (f"import torch\nfrom bench.api import Method\n{at_import}\n\n"
            f"class P(Method):\n    name = {name!r}\n    family = 'test'\n"
            f"    description = 'hostile test plugin'\n    reference = 'test'\n    version = '1'\n"
            f"{score}")


# Inflates its own results: every accuracy the engine measures becomes 1.0.
INFLATE = plugin("inflate", """
import bench.compute.evaluate as _e
_real = _e.task_scores
def _fake(*args, **kwargs):
    return {k: (1.0 if isinstance(v, float) else v) for k, v in _real(*args, **kwargs).items()}
_e.task_scores = _fake  # the runner calls bench.compute.evaluate.task_scores
""")
# Sabotages everyone else: pruning removes everything it can.
SABOTAGE = plugin("sabotage", """
import bench.compute.prune as _p
_real = _p.prune
def _wreck(model, scores, granularity, scope, sparsity, *rest):
    return _real(model, scores, granularity, scope, 0.99, *rest)
_p.prune = _wreck  # the runner calls bench.compute.prune.prune
""")
# Leaves process state behind at import.
LEAKY = plugin("leaky", """
torch.set_grad_enabled(False)
torch.set_default_dtype(torch.float64)
torch.set_num_threads(64)
""")
LOOPS = plugin("loops", "while True:\n    pass\n")
EXITS_AT_IMPORT = plugin("exits-at-import", "raise SystemExit(0)\n")
TIMING = ("score_seconds", "prune_seconds", "recover_seconds")


def _measured(record: dict) -> dict:
    """A record's metrics without the run's wall times."""
    return {k: v for k, v in record["metrics"].items() if k not in TIMING}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """One synthetic run of magnitude, inflate and leaky with sabotage, a plugin that loops at
    import and one that exits at import all on XPRUNE_PLUGIN_PATH."""
    workdir = tmp_path_factory.mktemp("hostile")
    folder = workdir / "plugins"
    folder.mkdir()
    for name, text in [("inflate", INFLATE), ("sabotage", SABOTAGE), ("leaky", LEAKY),
                       ("loops", LOOPS), ("exits_at_import", EXITS_AT_IMPORT)]:
        (folder / f"{name}.py").write_text(text)
    env = {"XPRUNE_PLUGIN_PATH": str(folder), "XPRUNE_CACHE": str(workdir / "cache"),
           "XPRUNE_PLUGIN_IMPORT_TIMEOUT": "20"}
    started = time.monotonic()
    result = xprune("run", "--preset", "synthetic", "--granularities", "channel",
                    "--methods", "magnitude,inflate,leaky", "--workers", "1",
                    "--no-transparency", cwd=workdir, env=env, timeout=900)
    found = {r["cell"]["method"]: r
             for r in records.iter_records(workdir / "runs/synthetic/records")}
    return result, found, workdir, env, time.monotonic() - started


def test_a_run_finishes_beside_plugins_that_loop_or_exit_at_import(hostile_run):
    result, found, *_ = hostile_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(found) == ["inflate", "leaky", "magnitude"]
    assert all(r["status"] == "ok" for r in found.values())


def test_an_inflating_plugin_gets_the_honest_methods_numbers(hostile_run):
    """inflate scores exactly as magnitude does and patched the engine at import so that
    every accuracy reads 1.0: its record equals magnitude's in every measured number."""
    _, found, *_ = hostile_run
    assert _measured(found["inflate"]) == _measured(found["magnitude"])
    assert found["inflate"]["metrics"]["recovered"]["acc"] < 1.0


def test_a_sabotaging_plugin_on_the_path_changes_no_other_record(hostile_run):
    """The magnitude record of the run (sabotage on the path) equals the same cell re-run
    here, in a process that never saw the sabotaging plugin."""
    from bench.compute.runner import execute
    from bench.core.spec import Cell
    from bench.core.tasks import RunCell

    _, found, workdir, *_ = hostile_run
    record = found["magnitude"]
    threads = torch.get_num_threads()
    torch.set_num_threads(record["provenance"]["torch_threads"])
    try:
        outcome = execute(RunCell(Cell.from_dict(record["cell"])), workdir / "cache")
    finally:
        torch.set_num_threads(threads)
    assert outcome.ok, outcome.error
    again, _ = records.split_provenance(outcome.result)  # digest, kernels, isolation: provenance
    assert {k: v for k, v in again.items() if k not in TIMING} == _measured(record)
    assert record["metrics"]["achieved_sparsity"] < 0.9  # 0.5 asked; sabotage wanted 0.99


def test_plugin_state_does_not_leak_into_training_or_records(hostile_run):
    """leaky turned gradients off, set float64 and 64 threads at import: the baseline still
    trained, every record has the worker's thread count and leaky's numbers are magnitude's."""
    _, found, *_ = hostile_run
    expected = max(1, (os.cpu_count() or 1) // 1)
    assert {r["provenance"]["torch_threads"] for r in found.values()} == {expected}
    assert _measured(found["leaky"]) == _measured(found["magnitude"])


def test_records_say_how_scores_were_isolated(hostile_run):
    _, found, *_ = hostile_run
    assert {r["provenance"]["scoring"] for r in found.values()} == {sandbox.isolation()}
    digest = found["inflate"]["method"]["source_sha256"]
    import hashlib
    assert digest == hashlib.sha256(INFLATE.encode()).hexdigest()


def test_list_does_not_hang_on_a_plugin_that_loops_or_exits_at_import(tmp_path):
    for name, text in [("loops", LOOPS), ("exits_at_import", EXITS_AT_IMPORT)]:
        (tmp_path / f"{name}.py").write_text(text)
    env = {"XPRUNE_PLUGIN_PATH": str(tmp_path), "XPRUNE_PLUGIN_IMPORT_TIMEOUT": "20",
           "COLUMNS": "1000"}
    result = xprune("list", "methods", cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    broken = [line for line in result.stdout.splitlines() if line.startswith("broken")]
    assert any("loops.py" in b and "import did not finish within 20 s" in b for b in broken)
    assert any("exits_at_import.py" in b and "import ended the process (SystemExit" in b
               for b in broken)
    assert "magnitude" in result.stdout


@pytest.mark.parametrize("body, message", [
    ("import sys\n        sys.exit(0)", "the plugin ended the scoring process (SystemExit: 0)"),
    ("import os\n        os._exit(0)", "the scoring process ended (exit status 0) without "
                                       "returning scores"),
])
def test_a_plugin_that_exits_in_score_fails_check(tmp_path, cli, body, message):
    path = tmp_path / "quitter.py"
    path.write_text(plugin("quitter", score=f'''
    granularities = ("channel",)

    def score(self, model, sites, batch):
        {body}
'''))
    failed = [r for r in check(str(path), budget=30) if not r.ok]
    assert [(r.check, r.message) for r in failed] == [("channel: contract", f"quitter: {message}")]
    code, out, _ = cli("check", str(path))
    assert code == 1 and "check passed" not in out


def test_a_plugin_that_loops_at_import_fails_check(tmp_path, monkeypatch):
    monkeypatch.setenv(sandbox.IMPORT_TIMEOUT_ENV, "3")
    path = tmp_path / "loops.py"
    path.write_text(LOOPS)
    [outcome] = check(str(path))
    assert (outcome.check, outcome.ok) == ("import", False)
    assert outcome.message == "import did not finish within 3 s (process killed)"


@pytest.mark.skipif(sandbox.sandbox_mode() != "bwrap", reason="bubblewrap does not work here")
def test_the_sandbox_lets_a_plugin_write_only_its_temporary_folder(tmp_path):
    """Under bubblewrap a plugin's write outside its folder fails; the plugin still scores."""
    from bench.compute import data, models

    target = tmp_path / "planted.txt"
    path = tmp_path / "writer.py"
    path.write_text(plugin("writer", score=f'''
    granularities = ("channel",)

    def score(self, model, sites, batch):
        try:
            open({str(target)!r}, "w").write("pwned")
        except OSError:
            pass
        return {{s.name: torch.ones(s.shape) for s in sites}}
'''))
    dataset = data.load(data.SYNTHETIC)
    model = models.build("smallcnn", dataset.info.n_channels, dataset.info.n_classes).eval()
    scores, _ = sandbox.score(f"path:{path}", "writer", model, "channel",
                              data.reference_batch(dataset, 2, 0), 0, 60)
    assert scores and not target.exists()


def test_a_score_that_never_returns_is_stopped_at_its_bound(tmp_path):
    from bench.compute import data, models

    path = tmp_path / "hangs.py"
    path.write_text(plugin("hangs", score='''
    granularities = ("channel",)

    def score(self, model, sites, batch):
        while True:
            pass
'''))
    dataset = data.load(data.SYNTHETIC)
    model = models.build("smallcnn", dataset.info.n_channels, dataset.info.n_classes).eval()
    with pytest.raises(sandbox.ScoringTimeout, match=r"^hangs: score\(\) did not finish "
                                                     r"within 2 s \(process killed\)$"):
        sandbox.score(f"path:{path}", "hangs", model, "channel",
                      data.reference_batch(dataset, 2, 0), 0, 2)
    # the overrun killed the plugin's scoring server; its next request starts another
    with pytest.raises(sandbox.ScoringTimeout):
        sandbox.score(f"path:{path}", "hangs", model, "channel",
                      data.reference_batch(dataset, 2, 0), 0, 2)


def test_the_default_score_bound_scales_with_the_backbone():
    assert sandbox.default_score_timeout("smallcnn") == 600.0
    assert sandbox.default_score_timeout("resnet18") == 8 * 600.0


def test_check_submission_fails_closed(tmp_path):
    """A check that exits 0 without printing its pass line (what a plugin ending `check`'s
    process used to produce) fails the submission."""
    import shutil
    import subprocess

    from conftest import REPO

    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
                       cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "base")
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO / ".ci/check-submission.sh", tmp_path / ".ci")
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods/quiet.py").write_text(plugin("quiet"))
    git("add", ".")
    git("commit", "-q", "-m", "plugin")
    result = subprocess.run(["bash", ".ci/check-submission.sh", "HEAD~1"], cwd=tmp_path,
                            env={**os.environ, "XPRUNE": "true"}, capture_output=True, text=True)
    assert result.returncode == 1
    assert "step exited 0 without its pass line: treated as a failure" in result.stdout
    assert result.stdout.rstrip().endswith("check-submission: FAILED (see above)")


def test_verify_compares_method_and_timing_fields():
    """Edited method declarations are mismatches; latency within a factor of 2 on the same
    hardware agrees, beyond it is a mismatch, and on other hardware is unverifiable."""
    from dataclasses import replace

    from recordfactory import make_record

    from bench.core.method import MethodLabel
    from bench.results.verify import compare_method, compare_timings

    record = make_record()
    block = {**record["method"], "source_sha256": "ab"}
    current = MethodLabel.from_dict({**block, "granularities": "channel,weight"})
    assert compare_method(block, current) == []
    assert compare_method({**block, "description": "edited"}, current) == [
        ("method.description", "edited", block["description"])]
    assert compare_method(block, replace(current, source_sha256="cd")) == [
        ("method.source_sha256", "ab", "cd")]
    published = record["metrics"]
    rerun = json_copy(published)
    rerun["latency"]["b1"]["speedup"] *= 1.9
    assert compare_timings(published, rerun)[0] == []
    rerun["latency"]["b1"]["speedup"] = published["latency"]["b1"]["speedup"] * 2.1
    assert [f for f, *_ in compare_timings(published, rerun)[0]] == ["latency.b1.speedup"]
    rerun["latency"]["hardware"] = "another CPU"
    differing, unverifiable = compare_timings(published, rerun)
    assert differing == [] and "latency.speedup (other hardware)" in unverifiable


def json_copy(value):
    import json
    return json.loads(json.dumps(value))


def test_verify_fails_a_malformed_record_as_that_record(tmp_path):
    """A record file that is not a valid record fails as itself; verify does not crash."""
    from bench.results.verify import verify

    folder = tmp_path / "reports" / "synthetic"
    folder.mkdir(parents=True)
    (folder / "hostile.json").write_text('{"schema_version": 2, "cell": []}')
    report = verify(tmp_path / "reports")
    assert not report.ok and report.exit_code == 1
    assert len(report.failures) == 1 and report.failures[0].startswith(
        "hostile.json: unreadable record (")


def _synthetic_request():
    from bench.compute import data, models

    dataset = data.load(data.SYNTHETIC)
    torch.manual_seed(0)
    model = models.build("smallcnn", dataset.info.n_channels, dataset.info.n_classes).eval()
    return model, data.reference_batch(dataset, 2, 0)


def test_scoring_requests_of_one_plugin_fork_from_one_server_and_score_as_fresh_processes(
        monkeypatch):
    """Two requests of a plugin reuse its server (one start-up); the scores equal those of a
    scoring process started from scratch, bit for bit."""
    model, batch = _synthetic_request()
    sandbox.close_servers()
    first, _ = sandbox.score("methods/taylor.py", "taylor", model, "channel", batch, 0, 120)
    pid = sandbox.server("methods/taylor.py", "cpu").proc.pid
    again, _ = sandbox.score("methods/taylor.py", "taylor", model, "channel", batch, 0, 120)
    assert sandbox.server("methods/taylor.py", "cpu").proc.pid == pid
    monkeypatch.setenv(sandbox.SCORING_ENV, "fresh")
    fresh, _ = sandbox.score("methods/taylor.py", "taylor", model, "channel", batch, 0, 120)
    assert first.keys() == again.keys() == fresh.keys()
    assert all(torch.equal(first[k], fresh[k]) and torch.equal(again[k], fresh[k])
               for k in fresh)


def test_a_plugin_that_kills_its_scoring_server_fails_only_its_own_request(tmp_path):
    path = tmp_path / "killer.py"
    path.write_text(plugin("killer", at_import="import os, signal", score='''
    granularities = ("channel",)

    def score(self, model, sites, batch):
        os.kill(os.getppid(), signal.SIGKILL)  # the server this process was forked from
        return {}
'''))
    model, batch = _synthetic_request()
    with pytest.raises(sandbox.PluginError, match=r"^killer: the scoring process ended "):
        sandbox.score(f"path:{path}", "killer", model, "channel", batch, 0, 60)
    scores, _ = sandbox.score("methods/magnitude.py", "magnitude", model, "channel", batch, 0, 60)
    assert scores


def test_each_plugin_source_has_its_own_scoring_server():
    model, batch = _synthetic_request()
    sandbox.close_servers()
    for source, method in [("methods/magnitude.py", "magnitude"), ("methods/taylor.py", "taylor")]:
        sandbox.score(source, method, model, "channel", batch, 0, 120)
    servers = {source: sandbox.server(source, "cpu") for source in
               ("methods/magnitude.py", "methods/taylor.py")}
    assert len({s.proc.pid for s in servers.values()}) == 2
    assert servers["methods/magnitude.py"].folder != servers["methods/taylor.py"].folder
