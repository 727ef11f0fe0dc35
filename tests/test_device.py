"""--device: selection, one-line refusals, Slurm GPUs, records and verify per device kind, and
``--device cpu`` computing exactly what main computes.

This machine has no GPU: the CUDA path itself is not exercised here (see README).
"""

from __future__ import annotations

import json

import pytest
import torch
from recordfactory import make_record as factory_record
from recordfactory import variant
from submitit.slurm.slurm import _make_sbatch_string

from bench.compute import device
from bench.compute.runner import execute, run_cell
from bench.core import paths
from bench.core.errors import SpecError
from bench.core.spec import Cell
from bench.core.tasks import RunCell
from bench.results import records
from bench.results.records import make_record
from bench.results.verify import verify
from bench.run.slurm import SlurmError, SlurmExecutor

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
TIMINGS = ("latency", "score_seconds", "prune_seconds", "recover_seconds")
# A tiny cell, and its hashes as computed by main's code (commit 7cee0cf, before --device),
# under protocol 3 (pinned kernels: every hash changed with the protocol, nothing else).
CELL = Cell("synthetic", 28, "smallcnn", "magnitude", "1", "channel", "layer", 0.5, "bnrecal",
            seed=0, epochs=2, reference_per_class=4, min_steps=0, transparency=True)
MAIN_HASHES = ("c616e03eb3f91815", "29279a0afd8f7d0f", "28c35a6e8847ed94")


def test_auto_is_cuda_only_where_torch_sees_one():
    assert device.resolve("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert device.resolve("cpu") == "cpu"


@no_cuda
def test_cuda_without_cuda_is_refused_in_one_line(cli, workdir):
    with pytest.raises(SpecError, match=r"^--device cuda: torch sees no CUDA device here"):
        device.resolve("cuda")
    code, out, err = cli("run", "--preset", "synthetic", "--device", "cuda", "--dry-run")
    assert code == 2 and out == ""
    assert err.startswith("error: --device cuda: torch sees no CUDA device here (torch ")
    assert err.strip().endswith("use --device cpu or auto") and len(err.strip().splitlines()) == 1


def test_an_unknown_device_is_refused_in_one_line(cli, workdir):
    code, _, err = cli("run", "--preset", "synthetic", "--device", "gpu", "--dry-run")
    assert (code, err.strip()) == (2, "error: unknown device 'gpu' (known: cpu, cuda, auto)")


def test_slurm_gpus_reach_the_sbatch_script(tmp_path):
    executor = SlurmExecutor(tmp_path, tmp_path / "slurm", partition="gpu", gpus=2, cpus=4,
                             device="cuda")
    params = executor.parameters()
    assert params == {"time": 60, "cpus_per_task": 4, "array_parallelism": 64,
                      "job_name": "xprune", "partition": "gpu", "gpus_per_node": 2,
                      "setup": ["export ATEN_CPU_CAPABILITY=avx2", "export ONEDNN_MAX_CPU_ISA=AVX2",
                                "export MKL_CBWR=AVX2,STRICT"]}  # the pinned kernels (protocol 3)
    script = _make_sbatch_string(command="python task.py", folder=tmp_path, **params)
    assert "#SBATCH --gpus-per-node=2\n" in script and "#SBATCH --cpus-per-task=4\n" in script
    cpu_only = SlurmExecutor(tmp_path, tmp_path / "slurm").parameters()
    assert "gpus_per_node" not in cpu_only
    assert "--gpus" not in _make_sbatch_string(command="x", folder=tmp_path, **cpu_only)


def test_slurm_device_follows_the_requested_gpus(tmp_path):
    assert device.resolve("auto", "slurm", slurm_gpus=1) == "cuda"
    assert device.resolve("auto", "slurm", slurm_gpus=0) == "cpu"
    with pytest.raises(SpecError, match="needs --slurm-gpus N"):
        device.resolve("cuda", "slurm", slurm_gpus=0)
    with pytest.raises(SlurmError, match="device cuda needs gpus >= 1"):
        SlurmExecutor(tmp_path, tmp_path, device="cuda").parameters()


def test_cache_files_keep_their_names_on_the_cpu_and_get_the_device_on_a_gpu():
    assert paths.cache_name("33cdb8279ada6de7", "cpu") == "33cdb8279ada6de7.pt"
    assert paths.cache_name("33cdb8279ada6de7", "cuda") == "33cdb8279ada6de7.cuda.pt"


def test_the_device_is_not_part_of_any_hash():
    assert (CELL.hash, CELL.baseline.hash, CELL.scores.hash) == MAIN_HASHES


def _comparable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


def test_device_cpu_computes_what_the_default_computes(tmp_path):
    """The same cell in two fresh caches: default (as main runs it) vs device='cpu'."""
    torch.set_num_threads(1)
    default = run_cell(CELL, tmp_path / "a")
    explicit = run_cell(CELL, tmp_path / "b", device="cpu")
    assert _comparable(default) == _comparable(explicit)
    assert json.dumps(_comparable(default), sort_keys=True) == json.dumps(
        _comparable(explicit), sort_keys=True)
    assert set(default["latency"]) == {"hardware", "threads", "b1", "b64"}  # no gpu block
    assert [p.name for p in (tmp_path / "b" / "baselines").glob("*.pt")] == [
        f"{MAIN_HASHES[1]}.pt"]


def test_records_name_the_device_and_keep_main_s_determinism_block(tmp_path):
    outcome = execute(RunCell(CELL), tmp_path, "cpu")
    assert outcome.ok, outcome.error
    assert outcome.device == {"kind": "cpu", "gpu": None}
    record = make_record(CELL, outcome)
    assert record["provenance"]["device"] == {"kind": "cpu", "gpu": None}
    assert record["provenance"]["determinism"] == {
        "deterministic_algorithms": False, "cudnn_deterministic": False, "device": "cpu"}
    assert record["method"]["architectures"] == "any"
    records.validate(record)


@no_cuda
def test_verify_compares_a_cuda_record_only_on_cuda(tmp_path):
    record = variant(factory_record(), {"provenance.device": {"kind": "cuda", "gpu": "GPU X"}})
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / f"{record['cell_hash']}.json").write_text(json.dumps(record))
    report = verify(folder, cache_dir=tmp_path / "cache")
    assert report.checked == [] and len(report.failures) == 1
    assert report.failures[0] == (f"{record['cell_hash']}: computed on cuda, and this machine "
                                  "has no CUDA device: not re-run (a record is only compared "
                                  "against a re-run on its own device kind)")
    assert report.exit_code == 1
