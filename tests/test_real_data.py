"""Real MedMNIST end to end: a ResNet-18 baseline reaches MedMNIST v2's AUC on PneumoniaMNIST,
and 50% channel pruning makes it smaller and cheaper (one training epoch, ~2 min on 2 cores)."""

import pytest
from conftest import needs_real_data, real_data_available, run_matrix

from bench.core.spec import Spec
from bench.results import records
from bench.run import coordinator
from bench.run.executors import LocalExecutor


@needs_real_data
@pytest.mark.skipif(not real_data_available("pneumoniamnist"), reason="pneumoniamnist missing")
def test_resnet18_pneumonia_baseline_and_half_channel_pruning(tmp_path, capsys):
    spec = Spec(name="resnet18-test", datasets=("pneumoniamnist",), backbones=("resnet18",),
                methods=("magnitude",), sparsities=(0.5,), recovery=("bnrecal",),
                epochs={"resnet18": 1}, min_steps=0, transparency=False)
    plan = coordinator.plan(spec, tmp_path / "run", tmp_path / "cache")
    assert run_matrix(plan, LocalExecutor(tmp_path / "cache", workers=0))["ok"] == 1
    record = next(records.iter_records(plan.records_dir))
    m = record["metrics"]
    with capsys.disabled():
        print(f"\nresnet18/pneumoniamnist: dense AUC {m['dense']['auc']:.4f} ACC "
              f"{m['dense']['acc']:.4f}; 50% channels: params {m['params_dense']} -> "
              f"{m['params']}, MACs {m['macs_dense']} -> {m['macs']}, latency b64 "
              f"{m['latency']['b64']['dense_ms']:.1f} -> {m['latency']['b64']['pruned_ms']:.1f} ms")
    assert m["dense"]["auc"] >= 0.93  # MedMNIST v2 reports 0.944
    assert m["achieved_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert m["params"] < 0.3 * m["params_dense"] and m["macs"] < 0.3 * m["macs_dense"]
    b64 = m["latency"]["b64"]
    assert b64["dense_ms"] > b64["pruned_ms"] > 0 and b64["speedup_ci"][0] > 1  # measured, real
    assert m["recovered"]["auc"] > 0.5


@needs_real_data
def test_bnrecal_recovers_a_collapsed_structured_prune(tmp_path):
    spec = Spec(name="bnrecal-test", datasets=("breastmnist",), backbones=("vgg",),
                methods=("magnitude",), sparsities=(0.7,), recovery=("none", "bnrecal"),
                epochs={"vgg": 3}, min_steps=0)
    plan = coordinator.plan(spec, tmp_path / "run", tmp_path / "cache")
    assert run_matrix(plan, LocalExecutor(tmp_path / "cache", workers=0))["ok"] == 2
    by_recovery = {r["cell"]["recovery"]: r["metrics"]
                   for r in records.iter_records(plan.records_dir)}
    none, bnrecal = by_recovery["none"], by_recovery["bnrecal"]
    assert none["pruned"] == none["recovered"] == bnrecal["pruned"]  # same prune, no recovery
    assert none["params"] == bnrecal["params"]
    assert bnrecal["recovered"]["auc"] > none["recovered"]["auc"]
