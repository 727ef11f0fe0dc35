"""Pins on the private APIs of libraries this engine relies on: if an upgrade moves or
changes them, these fail with a clear message instead of the engine failing at run time."""

import inspect

import pytest


def test_captum_trapezoid_points_are_where_bench_attribution_ig_reads_them():
    from captum.attr._utils.approximation_methods import approximation_parameters

    _, alphas = approximation_parameters("riemann_trapezoid")  # bench uses the points only
    assert alphas(5) == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])


def test_submitit_watcher_has_the_methods_bench_slurm_overrides():
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

    assert inspect.signature(SlurmInfoWatcher._make_command).parameters.keys() == {"self"}
    assert "string" in inspect.signature(SlurmInfoWatcher.read_info).parameters
    watcher = SlurmInfoWatcher(delay_s=30)
    assert watcher._make_command() is None  # nothing registered: nothing to ask Slurm
    assert hasattr(watcher, "_registered") and hasattr(watcher, "_finished")
    assert hasattr(SlurmJob, "watcher")
    parsed = watcher.read_info("JobID|State|NodeList\n12_0|RUNNING|node1\n")
    assert parsed["12_0"]["State"] == "RUNNING"


def test_torch_pruning_counter_consults_custom_modules_first_and_resets_them():
    """bench.compute.evaluate.cost registers its attention counter there (before each count)."""
    from torch_pruning.utils import op_counter

    assert op_counter.CUSTOM_MODULES_MAPPING == {}
    assert "if type(module) in CUSTOM_MODULES_MAPPING:" in inspect.getsource(op_counter)
    assert "CUSTOM_MODULES_MAPPING = {}" in inspect.getsource(op_counter.count_ops_and_params)


def test_lxt_efficient_rules_file_holds_the_rules_lrp_attn_loads():
    """bench.attribution.attnlrp loads lxt/efficient/rules.py by path (not the package)."""
    from bench.attribution.attnlrp import lxt_rules

    rules = lxt_rules()
    for name in ("identity_rule_implicit", "divide_gradient", "stop_gradient"):
        assert callable(getattr(rules, name)), name


def test_timm_attention_reshapes_by_attn_dim():
    """Head pruning sets num_heads and attn_dim; timm >= 1.0.23 reshapes by attn_dim."""
    from timm.layers import Attention

    assert "self.attn_dim" in inspect.getsource(Attention.forward)
