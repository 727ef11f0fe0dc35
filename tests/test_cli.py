"""Bad input: a one-line error, exit status 2, no traceback (the real entry point, in-process)."""

import pytest


@pytest.mark.parametrize("args, message", [
    (["run", "--preset", "quick", "--datasets", "nosuch"], "error: unknown dataset 'nosuch'"),
    (["run", "--preset", "quick", "--methods", "nosuch"], "error: unknown method 'nosuch'"),
    (["run", "--preset", "quick", "--backbones", "resnet50"], "error: unknown backbone 'resnet50'"),
    (["run", "--preset", "quick", "--sparsities", "1.5"], "error: sparsity 1.5 is outside (0, 1)"),
    (["run", "--preset", "quick", "--sparsities", "0"], "error: sparsity 0.0 is outside (0, 1)"),
    (["run", "--preset", "quick", "--sparsities", "half"], "error: --sparsities: 'half' is not"),
    (["run", "--preset", "quick", "--recovery", "retrain"], "error: unknown recovery 'retrain'"),
    (["run", "--preset", "nope"], "error: unknown preset 'nope'"),
    (["run"], "error: give exactly one of --preset NAME or a SPEC.yaml path"),
    (["run", "missing.yaml"], "error: spec file missing.yaml not found"),
    (["list", "things"], "error: unknown list 'things'"),
    (["check", "nosuch"], "error: unknown method 'nosuch'"),
])
def test_bad_input_is_one_line(workdir, cli, args, message):
    code, _, err = cli(*args)
    assert code == 2
    assert err.strip().startswith(message)
    assert len(err.strip().splitlines()) == 1


def test_malformed_spec_file(workdir, cli):
    (workdir / "bad.yaml").write_text("datasets: [synthetic\nmethods: x\n")
    code, _, err = cli("run", "bad.yaml")
    assert (code, err.strip()) == (2, "error: spec bad.yaml: malformed YAML at line 2")


def test_missing_data_file(workdir, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("XPRUNE_DATA_ROOT", str(tmp_path / "empty"))
    code, _, err = cli("run", "--preset", "quick", "--dry-run")
    assert code == 2
    assert err.startswith("error: breastmnist: data file") and "not found" in err


def test_md5_mismatch(workdir, cli, monkeypatch, tmp_path):
    root = tmp_path / "fake"
    root.mkdir()
    (root / "breastmnist.npz").write_bytes(b"not the official file")
    monkeypatch.setenv("XPRUNE_DATA_ROOT", str(root))
    code, _, err = cli("run", "--preset", "quick", "--datasets", "breastmnist", "--dry-run")
    assert code == 2
    assert "md5 mismatch" in err and len(err.strip().splitlines()) == 1


def test_unwritable_output_folder(workdir, cli):
    (workdir / "blocker").write_text("a file where a folder should be")
    code, _, err = cli("run", "--preset", "synthetic", "--methods", "random", "--out",
                       "blocker/run")
    assert code == 2
    assert err.strip().startswith("error: output folder blocker/run is not writable")


@pytest.mark.parametrize("what, expected", [
    ("methods", "magnitude"), ("backbones", "resnet18"), ("presets", "quick"),
    ("datasets", "pneumoniamnist")])
def test_list_commands_work(workdir, cli, what, expected):
    code, out, _ = cli("list", what)
    assert code == 0 and expected in out


def test_corrupt_npz(workdir, cli, monkeypatch, tmp_path):
    import zipfile

    root = tmp_path / "corrupt"
    root.mkdir()
    with zipfile.ZipFile(root / "pneumoniamnist.npz", "w") as zf:
        zf.writestr("train_images.npy", b"\x93NUMPY garbage")
    monkeypatch.setenv("XPRUNE_DATA_ROOT", str(root))
    code, _, err = cli("run", "--preset", "quick", "--datasets", "pneumoniamnist", "--dry-run")
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
    run = _record_dir(workdir, "run", '{"schema_version": 3}')
    code, _, err = cli("publish", str(run), "--to", "reports")
    assert code == 2
    assert "schema_version 3 is newer than this xprune understands (2); upgrade" in err


def test_verify_missing_reports_folder(workdir, cli):
    code, _, err = cli("verify", "--reports", "nowhere")
    assert (code, err.strip()) == (2, "error: reports folder nowhere does not exist")
