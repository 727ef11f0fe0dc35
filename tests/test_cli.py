"""Bad input: a one-line error, exit status 2, no traceback, nothing written (the real entry
point, in-process). Every row of docs/bad-inputs.md that the command line answers is here."""

from pathlib import Path

import pytest
import typer
from conftest import needs_real_data, xprune

QUICK = ["run", "--preset", "quick"]
SYN = ["run", "--preset", "synthetic"]


def _files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.mark.parametrize("args, message", [
    (QUICK + ["--datasets", "nosuch"], "error: unknown dataset 'nosuch'"),
    (QUICK + ["--methods", "nosuch"], "error: unknown method 'nosuch'"),
    (QUICK + ["--backbones", "resnet50"], "error: unknown backbone 'resnet50'; did you mean resnet20, resnet18?"),
    (QUICK + ["--sparsities", "1.5"], "error: sparsity 1.5 is outside (0, 1)"),
    (QUICK + ["--sparsities", "0"], "error: sparsity 0.0 is outside (0, 1)"),
    (QUICK + ["--sparsities", "half"], "error: --sparsities: 'half' is not a comma-separated list of numbers"),
    (QUICK + ["--recovery", "retrain"], "error: unknown recovery 'retrain' (none, bnrecal or finetune:K)"),
    (["run", "--preset", "nope"], "error: unknown preset 'nope'"),
    (["run", "quick", "--preset", "quick"], "error: give either --preset NAME or a SPEC.yaml path, not both"),
    (["run", "missing.yaml"], "error: spec file missing.yaml not found"),
    (["check", "nosuch"], "error: unknown method 'nosuch'"),
    # defect 1: usage errors from typer's bundled click
    (["chek"], "error: No such command 'chek'. Did you mean 'check'? (see 'xprune --help')"),
    (["run", "--bogus"], "error: No such option: --bogus"),
    (["run", "--workers", "-1"], "error: Invalid value for '--workers'"),
    (["verify", "--sample", "0"], "error: Invalid value for '--sample'"),
    (["list", "things"], "error: Invalid value for 'what'"),
    (["list"], "error: Missing argument 'what'"),
    # defect 3
    (SYN + ["--cell-timeout", "-5"], "error: --cell-timeout must be a positive number of seconds, got -5"),
    (SYN + ["--cell-timeout", "nan"], "error: --cell-timeout must be a positive number of seconds, got nan"),
    (SYN + ["--out", "x" * 300], "error: output folder name xxxxxxxxxxxxxxxxxxxxxxxx… is too long (300 bytes; at most 255 per folder name)"),
    (SYN + ["--executor", "k8s"], "error: Invalid value for '--executor'"),
    (SYN + ["--slurm-time", "0"], "error: Invalid value for '--slurm-time'"),
    # defect 10
    (["verify", "--tolerance", "inf"], "error: --tolerance must be a finite, non-negative number, got inf"),
    (["verify", "--tolerance", "nan"], "error: --tolerance must be a finite, non-negative number, got nan"),
    (["verify", "--tolerance", "-1"], "error: --tolerance must be a finite, non-negative number, got -1"),
    # defect 11
    (SYN + ["--methods", ""], "error: --methods is empty (leave the option out to keep the spec's methods)"),
    (SYN + ["--sparsities", ""], "error: --sparsities is empty (leave the option out to keep the spec's sparsities)"),
    (SYN + ["--datasets", " , "], "error: --datasets is empty"),
    (SYN + ["--granularities", "nosuch"], "error: unknown granularity 'nosuch' (known: channel, weight, head)"),
    (SYN + ["--seeds", "-1"], "error: seed -1 is not a non-negative integer"),
    (SYN + ["--workers", "abc"], "error: Invalid value for '--workers'"),
    (["list", "methods", "extra"], "error: Got unexpected extra argument(s) (extra)"),
    (["leaderboard", "--reports", "nowhere"], "error: reports directory nowhere does not exist"),
    (["publish", "nowhere"], "error: run directory nowhere does not exist"),
    (["check", "nosuch.py"], "error: plugin file nosuch.py not found"),
    (SYN + ["--datasets", "zz*"], "error: no dataset matches 'zz*'"),
    (SYN + ["--granularities", "weight", "--methods", "activation"],
     "error: the matrix is empty: no method supports the requested granularities"),
    (SYN + ["--granularities", "head"],  # the synthetic preset's smallcnn has no heads
     "error: the matrix is empty: no method supports the requested granularities on the "
     "requested backbones"),
    (SYN + ["--device", "gpu"], "error: unknown device 'gpu' (known: cpu, cuda, auto)"),
    (SYN + ["--executor", "slurm", "--device", "cuda"],
     "error: --device cuda with --executor slurm needs --slurm-gpus N (N >= 1)"),
    (SYN + ["--recovery", "finetune:0"], "error: unknown recovery 'finetune:0'"),
    (SYN + ["--methods", "random", "--cache", "/proc/xprune-cache"],
     "error: cache folder /proc/xprune-cache is not writable (No such file or directory)"),
    (["check", "magnitude", "--backbone", "nosuch"], "error: unknown backbone 'nosuch'"),
    (["check", "p.py", "--budget", "inf"], "error: --budget must be a positive number of seconds, got inf"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(workdir, cli, args, message):
    before = _files(workdir)
    code, _, err = cli(*args)
    assert code == 2
    assert err.strip().startswith(message)
    assert len(err.strip().splitlines()) == 1
    assert _files(workdir) == before


@pytest.mark.parametrize("body, message", [
    ("name: ../../etc\ndatasets: [synthetic]\nbackbones: [smallcnn]\nmethods: [random]\n",
     "error: spec name '../../etc' is not a plain name"),
    ("datasets: [synthetic]\nbackbones: [smallcnn]\nmethods: [random]\nsize: 999\n",
     "error: size 999 is not one of 28, 64, 128, 224"),
    ("datasets: [synthetic]\nbackbones: [smallcnn]\nmethods: [random]\nsize: 0\n",
     "error: size 0 is not one of 28, 64, 128, 224"),
    ("datasets: [synthetic\nmethods: x\n", "error: spec bad.yaml: malformed YAML at line 2"),
    ("datasets: [synthetic]\nbackbones: [vit]\nmethods: [random]\nsize: 64\n",
     "error: backbone vit is built for 28 px images, not size 64"),
    ("datasets: [synthetic]\nbackbones: [smallcnn]\nmethods: [random]\ndevice: tpu\n",
     "error: unknown device 'tpu' (known: cpu, cuda, auto)"),
])
def test_bad_spec_file_is_refused(workdir, cli, body, message):
    (workdir / "bad.yaml").write_text(body)
    code, _, err = cli("run", "bad.yaml")
    assert (code, err.strip().splitlines()) == (2, [err.strip()])
    assert err.strip().startswith(message)
    assert not (workdir / "runs").exists()


def test_unwritable_site_folder(workdir, cli):
    (workdir / "reports").mkdir()
    code, _, err = cli("leaderboard", "--out", "/proc/site")
    assert (code, err.strip()) == (
        2, "error: site folder /proc/site is not writable (No such file or directory)")


@pytest.mark.parametrize("body", ["- a\n", ""])
def test_spec_that_is_not_a_mapping_is_refused(workdir, cli, body):
    (workdir / "seq.yaml").write_text(body)
    assert cli("run", "seq.yaml")[::2] == (
        2, "error: spec 'seq': expected a mapping of axis names to lists\n")


def test_unusable_mlflow_store_is_one_line(workdir, cli, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://x")
    code, _, err = cli(*SYN, "--methods", "random", "--granularities", "channel")
    assert code == 2
    assert err.startswith("error: MLflow tracking at nosuchscheme://x is unusable: ")
    assert len(err.strip().splitlines()) == 1


def test_cache_that_is_a_file_is_refused(workdir, cli):
    (workdir / "cache.txt").write_text("not a folder")
    code, _, err = cli(*SYN, "--methods", "random", "--cache", "cache.txt")
    assert (code, err.strip()) == (2, "error: cache folder cache.txt is a file, not a folder")
    assert not (workdir / "runs").exists()


def test_unwritable_output_folder(workdir, cli):
    (workdir / "blocker").write_text("a file where a folder should be")
    code, _, err = cli(*SYN, "--methods", "random", "--out", "blocker/run")
    assert code == 2
    assert err.strip().startswith("error: output folder blocker/run is not writable")


def test_plugin_with_a_syntax_error_is_refused_with_its_error(workdir):
    plugin = workdir / "broken_syntax.py"
    plugin.write_text("from bench.api import Method\nclass B(Method)\n    name = 'broken-syntax'\n")
    result = xprune(*SYN, "--methods", "broken-syntax", "--dry-run", cwd=workdir,
                    env={"XPRUNE_PLUGIN_PATH": str(plugin)})
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: method plugin path:{plugin} failed to load: "
                                    "broken_syntax.py: import failed: SyntaxError")
    assert len(result.stderr.strip().splitlines()) == 1


def test_version(cli):
    from bench import __version__

    assert cli("--version") == (0, f"xprune-bench {__version__}\n", "")


def test_no_arguments_prints_help(cli):
    code, out, _ = cli()
    assert code == 0 and "Usage: xprune" in out and "run" in out


def test_every_option_has_help_text_and_no_placeholder():
    from bench.cli import app

    command = typer.main.get_command(app)
    for name, sub in command.commands.items():
        for param in sub.params:
            assert param.help, f"xprune {name} {param.name} has no help text"
            assert "{" not in (param.metavar or ""), f"xprune {name} {param.name}: {param.metavar}"


@pytest.mark.parametrize("what, header, expected", [
    ("methods", "method", "magnitude"), ("backbones", "backbone", "resnet18"),
    ("presets", "preset", "quick"), ("datasets", "dataset", "pneumoniamnist")])
def test_list_commands_print_a_table(workdir, cli, what, header, expected):
    code, out, _ = cli("list", what)
    assert code == 0
    assert out.split()[0] == header and expected in out


@needs_real_data
def test_run_without_spec_runs_the_quick_preset(workdir, cli):
    code, out, err = cli("run", "--dry-run")
    assert code == 0
    assert err.strip() == "no spec or preset given: running the quick preset (the main job)"
    assert out.startswith("plan: quick -> runs/quick")


def test_missing_data_file(workdir, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("XPRUNE_DATA_ROOT", str(tmp_path / "empty"))
    code, _, err = cli(*QUICK, "--dry-run")
    assert code == 2
    assert err.startswith("error: breastmnist: data file") and "not found" in err


def test_md5_mismatch(workdir, cli, monkeypatch, tmp_path):
    root = tmp_path / "fake"
    root.mkdir()
    (root / "breastmnist.npz").write_bytes(b"not the official file")
    monkeypatch.setenv("XPRUNE_DATA_ROOT", str(root))
    code, _, err = cli(*QUICK, "--datasets", "breastmnist", "--dry-run")
    assert code == 2
    assert "md5 mismatch" in err and len(err.strip().splitlines()) == 1


def test_corrupt_npz(workdir, cli, monkeypatch, tmp_path):
    import zipfile

    root = tmp_path / "corrupt"
    root.mkdir()
    with zipfile.ZipFile(root / "pneumoniamnist.npz", "w") as zf:
        zf.writestr("train_images.npy", b"\x93NUMPY garbage")
    monkeypatch.setenv("XPRUNE_DATA_ROOT", str(root))
    code, _, err = cli(*QUICK, "--datasets", "pneumoniamnist", "--dry-run")
    assert code == 2
    assert err.startswith("error: pneumoniamnist: md5 mismatch") and "corrupt" in err


def _record_dir(workdir, name, text):
    folder = workdir / name / "records"
    folder.mkdir(parents=True)
    (folder / "0123456789abcdef.json").write_text(text)
    return workdir / name


def test_invalid_record_json(workdir, cli):
    run = _record_dir(workdir, "run", '{"schema_version": 1, "cell_hash": ')
    code, _, err = cli("publish", str(run), "--to", "reports")
    assert code == 2
    assert err.startswith("error: ") and "not a readable JSON record" in err
    assert not (workdir / "reports").exists()


def test_record_from_a_newer_schema(workdir, cli):
    run = _record_dir(workdir, "run", '{"schema_version": 4}')
    code, _, err = cli("publish", str(run), "--to", "reports")
    assert code == 2
    assert "schema_version 4 is newer than this xprune understands (3); upgrade" in err


def test_verify_missing_reports_folder(workdir, cli):
    code, _, err = cli("verify", "--reports", "nowhere")
    assert (code, err.strip()) == (2, "error: reports folder nowhere does not exist")
