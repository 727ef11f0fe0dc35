"""Bad inputs and faults (issue 25, the bad-input half): each class ends in one ``error:``
line and exit 2 before any work, or leaves nothing half-written. docs/bad-inputs.md lists
every case with the test below that tries it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, xprune
from recordfactory import curve, make_record, variant

from bench.core.errors import RecordError, XPruneError
from bench.results import records
from bench.results.publish import publish
from bench.site.render import render

SPEC = "datasets: [synthetic]\nbackbones: [smallcnn]\nmethods: [random]\n"
BOMB = "".join(f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + BOMB + \
    "datasets: *i\nbackbones: [smallcnn]\nmethods: [random]\n"


def _files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@contextlib.contextmanager
def _mount(*args: str, target: Path):
    """A real mount (tmpfs, read-only bind) for the duration; skips where mounting is not
    allowed (not root, no CAP_SYS_ADMIN)."""
    done = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


@contextlib.contextmanager
def _read_only(folder: Path):
    with _mount("--bind", str(folder), target=folder):
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        yield folder


# 1. the spec: complete validation before any work ------------------------------------------

@pytest.mark.parametrize("body, message", [
    (SPEC + "seeds: [18446744073709551616]\n",
     "error: seed 18446744073709551616 is too large (at most 2147483647)"),
    (SPEC + "seeds: [true]\n", "error: seed True is not a non-negative integer"),
    (SPEC + "epochs: {smallcnn: 0}\n", "error: epochs.smallcnn must be an integer from 1 to 10000, got 0"),
    (SPEC + "epochs: {smalcnn: 2}\n", "error: spec 'bad': epochs: unknown backbone 'smalcnn'; did you mean smallcnn?"),
    (SPEC.replace("[synthetic]", "null"), "error: spec 'bad': datasets is null (give a list of values)"),
    (SPEC.replace("[random]", "[random, random]"), "error: spec 'bad': methods lists random more than once"),
    (SPEC + "sparsities: [0.5, 0.5]\n", "error: spec 'bad': sparsities lists 0.5 more than once"),
    (SPEC + "datasets: [breastmnist]\n", "error: spec bad.yaml: key 'datasets' appears twice at line 4"),
    (SPEC + "min_steps: true\n", "error: min_steps must be an integer, got True"),
    (SPEC + "name: [x]\n", "error: spec 'bad': name must be a string, got ['x']"),
    (SPEC.replace("[random]", "[3]"), "error: spec 'bad': methods entry 3 is not a name"),
    (BOMB, "error: spec bad.yaml: more than 32 YAML aliases (*name); write the values out"),
    (SPEC + "#" * 1_000_001 + "\n", "error: spec file bad.yaml is larger than 1000000 bytes"),
    (SPEC.encode().replace(b"synthetic", b"synth\xe9tic"), "error: spec file bad.yaml is not UTF-8 text (byte 16)"),
])
def test_a_bad_spec_is_refused_in_one_line_before_any_work(workdir, cli, body, message):
    path = workdir / "bad.yaml"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    before, started = _files(workdir), time.monotonic()
    code, _, err = cli("run", "bad.yaml")
    assert (code, err.strip().splitlines()) == (2, [err.strip()])
    assert err.strip().startswith(message)
    assert _files(workdir) == before  # no runs/, no cache, no mlflow.db: nothing trained
    assert time.monotonic() - started < 10  # the alias bomb is refused, not expanded


def test_a_repeated_seed_on_the_command_line_is_refused(workdir, cli):
    code, _, err = cli("run", "synthetic", "--seeds", "0,0", "--dry-run")
    assert (code, err.strip()) == (2, "error: spec 'synthetic': seeds lists 0 more than once")


# 2. OS errors on user-supplied paths ------------------------------------------------------

def _without_root_override(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """The CLI without the power to read any file: root drops CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH (setpriv), as an ordinary user already is."""
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root, and no setpriv to drop the file-permission override")
        caps = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
    return subprocess.run([*prefix, sys.executable, "-m", "bench.cli", *args], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env},
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("target, args, message", [
    ("secret.yaml", ["run", "secret.yaml", "--dry-run"],
     "error: spec file secret.yaml cannot be read (Permission denied)"),
    ("data", ["run", "breastmnist.yaml", "--dry-run"],
     "error: breastmnist: data file data/breastmnist.npz cannot be read (Permission denied)"),
    ("data", ["list", "datasets"],  # no handler of its own: the command line's OSError catch-all
     "error: cannot use data/pathmnist.npz: Permission denied"),
])
def test_an_unreadable_spec_or_data_root_is_one_line_and_exit_2(workdir, target, args, message):
    (workdir / "secret.yaml").write_text(SPEC)
    (workdir / "breastmnist.yaml").write_text(SPEC.replace("synthetic", "breastmnist"))
    (workdir / "data").mkdir()
    (workdir / target).chmod(0)
    result = _without_root_override(args, workdir, XPRUNE_DATA_ROOT="data")
    assert (result.returncode, result.stderr) == (2, message + "\n")


@pytest.mark.parametrize("args, message", [
    (["run", "synthetic", "--out", ""], "error: --out '' is not a path (leave the option out for the default)"),
    (["run", "synthetic", "--cache", " "], "error: --cache ' ' is not a path"),
    (["publish", ""], "error: RUN-DIR '' is not a path"),
    (["leaderboard", "--out", ""], "error: --out '' is not a path"),
])
def test_an_empty_path_is_refused_not_taken_as_the_current_folder(workdir, cli, args, message):
    before = _files(workdir)
    code, _, err = cli(*args)
    assert (code, err.strip().splitlines()) == (2, [err.strip()])
    assert err.startswith(message)
    assert _files(workdir) == before


def test_an_os_error_on_a_user_path_is_one_line_exit_2_not_an_internal_error(workdir, cli):
    run = workdir / "run" / "records"
    records.write(run, make_record())
    (workdir / "reports").mkdir()
    with _read_only(workdir / "reports"):
        code, _, err = cli("publish", "run", "--to", "reports")
    assert code == 2
    assert err.startswith("error: cannot publish into reports: Read-only file system")
    assert "internal error" not in err and len(err.strip().splitlines()) == 1


# 3. publish: all or nothing; non-finite numbers and oversized text refused ------------------

def test_a_partly_writable_reports_folder_leaves_nothing_published(tmp_path):
    recs = curve({0.2: 0.9, 0.5: 0.8}) + [make_record(method="random", sparsity=0.5)]
    run = tmp_path / "run" / "records"
    for r in recs:
        records.write(run, r)
    blocked = tmp_path / "reports" / "synthetic" / "smallcnn" / "random"
    blocked.mkdir(parents=True)
    with _read_only(blocked), pytest.raises(XPruneError, match="nothing was published"):
        publish(tmp_path / "run", tmp_path / "reports")
    assert sorted(_files(tmp_path / "reports")) == [
        Path("synthetic"), Path("synthetic/smallcnn"), Path("synthetic/smallcnn/random")]


@pytest.mark.parametrize("change, where", [
    ({"metrics.recovered.acc": float("nan")}, "metrics/recovered/acc: nan is not a finite number"),
    ({"metrics.compression": float("inf")}, "metrics/compression: inf is not a finite number"),
    ({"method.description": "x" * 20_001}, "method/description: text of 20001 characters (at most 20000)"),
])
def test_non_finite_numbers_and_oversized_text_are_refused_at_write_and_at_publish(
        tmp_path, change, where):
    bad = variant(make_record(), change)
    with pytest.raises(RecordError, match=re.escape("invalid record at " + where)):
        records.write(tmp_path / "run", bad)
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").iterdir())
    (tmp_path / "run").mkdir(exist_ok=True)  # as written by hand (json allows NaN by default)
    (tmp_path / "run" / f"{bad['cell_hash']}.json").write_text(json.dumps(bad))
    with pytest.raises(RecordError):
        publish(tmp_path / "run", tmp_path / "reports")
    assert not (tmp_path / "reports").exists()


def test_a_cells_error_and_a_plugins_description_are_clipped_in_its_record():
    from bench.core.textsafe import TEXT_MAX, clip

    text = clip("e" * 50_000)
    assert len(text) == TEXT_MAX and text.endswith("… [clipped: 50000 characters]")


# 4. the site: rendered aside and swapped in whole -----------------------------------------

def _reports(tmp_path: Path, recs: list[dict]) -> Path:
    reports = tmp_path / "reports"
    for r in recs:
        records.write(reports / r["cell"]["dataset"] / r["cell"]["backbone"] / r["cell"]["method"], r)
    return reports


def test_a_failed_render_keeps_the_previous_site_intact(tmp_path):
    reports = _reports(tmp_path, curve({0.2: 0.9, 0.5: 0.8}))
    render(reports, tmp_path / "site")
    before = {p: p.read_bytes() for p in (tmp_path / "site").rglob("*") if p.is_file()}
    assets = tmp_path / "assets"
    shutil.copytree(REPO / "leaderboard", assets, ignore=shutil.ignore_patterns("site"))
    (assets / "templates" / "records.j2").write_text("{{ no_such_variable }}")  # fails late
    with pytest.raises(Exception, match="no_such_variable"):
        render(reports, tmp_path / "site", assets)
    assert {p: p.read_bytes() for p in (tmp_path / "site").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets", "reports", "site"]


def test_a_site_inside_the_reports_folder_is_refused(tmp_path):
    reports = _reports(tmp_path, curve({0.2: 0.9}))
    with pytest.raises(XPruneError, match="is inside the reports folder"):
        render(reports, reports / "site")
    assert not (reports / "site").exists()


def test_control_and_bidi_characters_are_neutralised_on_the_site(tmp_path):
    desc = "safe \u202eevil\u202c text \x1b[2J"
    reports = _reports(tmp_path, [make_record(description=desc)])
    render(reports, tmp_path / "site")
    page = (tmp_path / "site" / "methods" / "magnitude.html").read_text()
    assert "safe \\u202eevil\\u202c text \\x1b[2J" in page
    for path in (tmp_path / "site").rglob("*.html"):
        text = path.read_text()
        assert "\u202e" not in text and "\x1b" not in text, path


# 5. the terminal: plugin text is escaped ---------------------------------------------------

def test_plugin_text_with_markup_and_ansi_codes_is_printed_escaped(workdir):
    plugin = workdir / "loud.py"
    plugin.write_text(
        "from bench.api import Method\n"
        "class Loud(Method):\n"
        "    name = 'loud'\n    family = '[bold red]family'\n"
        "    description = 'title \\x1b]0;pwned\\x07 clear \\x1b[2J [/nope] end'\n"
        "    reference = 'none'\n    granularities = ('channel',)\n"
        "    def score(self, model, sites, batch):\n        return {}\n")
    broken = workdir / "broken.py"
    broken.write_text("raise ImportError('[/red] closing tag \\x1b[31m')\n")
    result = xprune("list", "methods", cwd=workdir,
                    env={"XPRUNE_PLUGIN_PATH": os.pathsep.join([str(plugin), str(broken)]),
                         "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "title \\x1b]0;pwned\\x07 clear \\x1b[2J [/nope] end" in result.stdout
    assert "[bold red]family" in result.stdout
    assert "[/red] closing tag \\x1b[31m" in result.stdout


# 6. faults ---------------------------------------------------------------------------------

def test_a_full_disk_leaves_no_temporary_record(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    with _mount("-t", "tmpfs", "-o", "size=8k", "tmpfs", target=disk):
        record = make_record(description="d" * 19_000)
        with pytest.raises(OSError, match="No space left"):
            for i in range(10):
                records.write(disk / f"r{i}", record)
        assert not [p for p in disk.rglob(".tmp-*")]


def test_an_unreachable_tracking_server_fails_in_seconds(workdir, cli, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    started = time.monotonic()
    code, _, err = cli("run", "synthetic", "--methods", "random", "--granularities", "channel")
    assert (code, err.strip()) == (2, ("error: MLflow tracking server at http://127.0.0.1:9 "
                                       "cannot be reached (Connection refused); start it or "
                                       "set MLFLOW_TRACKING_URI"))
    assert time.monotonic() - started < 30
    assert not (workdir / "runs").exists()


def test_a_read_only_mlflow_store_says_read_only(workdir, cli, monkeypatch):
    from bench.run.tracking import Tracker

    store = workdir / "store"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    Tracker("x", "x", {}, uri=uri).finish()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with _read_only(store):
        code, _, err = cli("run", "synthetic", "--methods", "random", "--granularities", "channel")
    assert (code, err.strip()) == (2, (f"error: MLflow tracking at {uri} is read-only (the "
                                       "database file or its folder cannot be written): give a "
                                       "writable store with MLFLOW_TRACKING_URI"))


def test_two_runs_creating_a_fresh_store_at_once_both_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = ("import sys; from bench.run.tracking import Tracker; "
            "Tracker(sys.argv[1], 'r', {}, uri=sys.argv[2]).finish(); print('ok')")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code, f"exp{i}", uri], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-500:] for _, e in results]


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"),
                                             (signal.SIGINT, 130, "interrupted")])
def test_a_signal_closes_the_mlflow_parent_as_killed_without_a_traceback(workdir, sig, code, word):
    from mlflow.tracking import MlflowClient

    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "run", "synthetic", "--methods",
                             "random", "--granularities", "channel"], cwd=workdir,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # the parent run exists once the progress starts
        if "| started" in line:
            break
    time.sleep(1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert err.strip().splitlines()[-1].startswith(f"{word}: finished cells are saved")
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("xprune/synthetic").experiment_id])
    assert [r.info.status for r in runs if r.data.tags.get("xprune.kind") == "matrix"] == ["KILLED"]
