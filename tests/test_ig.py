"""Single-path Integrated Gradients (bench.attribution.ig): completeness and agreement with captum."""

import pytest
import torch
from captum.attr import LayerConductance
from torch import nn

from bench.api import Batch
from bench.attribution.ig import conductance, scaled_weights, weight_ig
from bench.compute.models import build
from bench.compute.units import find_sites, scoring_copy

torch.set_num_threads(1)


def setup(n: int = 4, size: int = 16) -> tuple[nn.Module, Batch]:
    torch.manual_seed(0)
    model = build("smallcnn", 1, 3)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2), bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(0.0, 0.3)
    gen = torch.Generator().manual_seed(1)
    batch = Batch(torch.randn(n, 1, size, size, generator=gen), torch.arange(n) % 3,
                  "multi-class", 3)
    return scoring_copy(model), batch


def f(model: nn.Module, batch: Batch, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return batch.target_logits(model(x))


def completeness_error(attr: torch.Tensor, delta: torch.Tensor) -> float:
    """|sum - (F(x) - F(0))| relative to the mass that has to cancel, sum |attr|."""
    return float((attr.sum() - delta).abs() / attr.abs().sum())


def test_input_attributions_sum_to_output_difference():
    model, batch = setup()
    delta = f(model, batch, batch.x) - f(model, batch, torch.zeros_like(batch.x))
    coarse = conductance(model, find_sites(model, "channel"), batch, steps=8).inputs
    fine = conductance(model, find_sites(model, "channel"), batch, steps=256).inputs
    assert fine.shape == batch.x.shape
    assert completeness_error(fine, delta) < 1e-3
    assert completeness_error(fine, delta) < completeness_error(coarse, delta)


def test_channel_conductance_of_a_sequential_layer_sums_to_output_difference():
    model, batch = setup()
    attr = conductance(model, find_sites(model, "channel"), batch, steps=256)
    delta = f(model, batch, batch.x) - f(model, batch, torch.zeros_like(batch.x))
    for name, cond in attr.channel.items():
        assert completeness_error(cond, delta) < 1e-3, name


@pytest.mark.parametrize("layer", ["4", "13"])
def test_all_layer_single_path_matches_captum_layer_conductance(layer):
    model, batch = setup(n=6)
    steps = 16
    ours = conductance(model, find_sites(model, "channel"), batch, steps=steps).channel[layer]
    theirs = LayerConductance(model, model.get_submodule(layer)).attribute(
        batch.x, baselines=0.0, target=batch.y, n_steps=steps, method="riemann_trapezoid")
    theirs = theirs.flatten(2).sum(2) if theirs.ndim > 2 else theirs
    assert ours.shape == theirs.shape
    pearson = torch.corrcoef(torch.stack([ours.flatten(), theirs.detach().flatten()]))[0, 1]
    assert pearson >= 0.99


def test_weight_ig_sums_to_output_difference_of_zeroing_site_weights():
    model, batch = setup(n=2, size=8)
    sites = find_sites(model, "weight")
    ig = weight_ig(model, sites, batch, steps=256)
    with scaled_weights(sites, 0.0):
        at_zero = f(model, batch, batch.x)
    delta = f(model, batch, batch.x) - at_zero
    assert all(ig[s.name].shape == s.weight.shape for s in sites)
    assert completeness_error(torch.cat([v.flatten() for v in ig.values()]), delta) < 1e-3


def test_a_capture_record_is_freed_without_the_cycle_collector():
    """The gradient hook on a captured output must not hold its record: that cycle kept each
    path point's forward graph alive (ResNet-18 IG grew by ~5 MB per image and step)."""
    import gc
    import weakref

    from bench.api import capture

    model, batch = setup()
    sites = find_sites(model, "channel")
    gc.disable()
    try:
        with capture(model, sites) as cap:
            batch.target_logits(model(batch.x)).backward()
        assert cap.grads  # the hook did store the gradients
        freed = weakref.ref(cap)
        del cap
        assert freed() is None
    finally:
        gc.enable()
