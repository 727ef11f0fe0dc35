"""LRP at prunable sites (bench.attribution.lrp) against zennit's own attributor and LRP identities."""

import pytest
import torch
from torch import nn
from zennit.attribution import Gradient
from zennit.composites import LayerMapComposite, layer_map_base
from zennit.core import stabilize
from zennit.rules import Epsilon
from zennit.types import Convolution

from bench.api import Batch, per_channel
from bench.attribution.lrp import COMPOSITES, REDUCTIONS, composite_for, relevance
from bench.compute.models import build
from bench.compute.units import find_sites, scoring_copy

torch.set_num_threads(1)


def batch_of(n: int, size: int = 16, classes: int = 3) -> Batch:
    gen = torch.Generator().manual_seed(1)
    return Batch(torch.randn(n, 1, size, size, generator=gen), torch.arange(n) % classes,
                 "multi-class", classes)


def smallcnn() -> nn.Module:
    """smallcnn with non-trivial BatchNorm statistics, so the BN merge matters."""
    torch.manual_seed(0)
    model = build("smallcnn", 1, 3)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2), bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5), bn.bias.data.uniform_(-0.1, 0.1)
    return scoring_copy(model)


def plain_vgg() -> nn.Module:
    """A VGG-like net without biases or BatchNorm: epsilon-LRP conserves relevance on it."""
    torch.manual_seed(0)
    return scoring_copy(nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(64, 32, bias=False), nn.ReLU(), nn.Linear(32, 3, bias=False)))


def epsilon_everywhere() -> LayerMapComposite:
    return LayerMapComposite(layer_map_base() + [(Convolution, Epsilon()), (nn.Linear, Epsilon())])


def zennit_maps(model: nn.Module, layers: dict[str, nn.Module], batch: Batch, composite) -> dict:
    """Independently: zennit's Gradient attributor, plain hooks on each layer's input and output."""
    seen = {}

    def keep(name):
        def hook(module, args, output):
            seen[name + ".in"] = args[0].detach()
            seen[name + ".z"] = output.detach()
            output.register_hook(lambda g: seen.__setitem__(name + ".R", g))
        return hook

    handles = [m.register_forward_hook(keep(n)) for n, m in layers.items()]
    with Gradient(model, composite) as attributor:
        attributor(batch.x.clone(), batch.target_mask())
    for h in handles:
        h.remove()
    return seen


@pytest.mark.parametrize("preset", sorted(COMPOSITES))
def test_channel_relevance_equals_zennit_map_reduced(preset):
    model, batch = smallcnn(), batch_of(5)
    sites = find_sites(model, "channel")
    maps = zennit_maps(model, {"4": model[4], "13": model[13]}, batch, composite_for(model, preset))
    for reduce, fn in REDUCTIONS.items():
        ours = relevance(model, sites, batch, composite_for(model, preset), reduce, weights=False)
        for name in ("4", "13"):
            torch.testing.assert_close(ours.channel[name], fn(maps[name + ".R"]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", ["onehot", "logit"])
def test_epsilon_rule_conserves_relevance_without_bias(seed):
    model, batch = plain_vgg(), batch_of(6)
    with torch.no_grad():
        total = batch.target_logits(model(batch.x)) if seed == "logit" else torch.tensor(6.0)
    ours = relevance(model, find_sites(model, "channel"), batch, epsilon_everywhere(), seed=seed)
    for name, r in ours.channel.items():
        torch.testing.assert_close(r.sum(), total, rtol=1e-4, atol=1e-5, msg=name)


def test_epsilon_weight_relevance_is_a_w_R_over_z():
    model, batch = plain_vgg(), batch_of(4)
    conv = model[3]
    maps = zennit_maps(model, {"c": conv}, batch, epsilon_everywhere())
    s = maps["c.R"] / stabilize(maps["c.z"])
    expected = conv.weight.detach() * torch.nn.grad.conv2d_weight(
        maps["c.in"], conv.weight.shape, s, padding=1)
    ours = relevance(model, find_sites(model, "weight"), batch, epsilon_everywhere())
    torch.testing.assert_close(ours.weight["3"], expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("preset", sorted(COMPOSITES))
def test_weight_relevance_sums_to_relevance_entering_the_layer_input(preset):
    """Summed over output channels and kernel offsets, a weight's messages are R at each input channel."""
    model, batch = smallcnn(), batch_of(5)
    maps = zennit_maps(model, {"pool": model[3]}, batch, composite_for(model, preset))
    ours = relevance(model, find_sites(model, "weight"), batch, composite_for(model, preset))
    torch.testing.assert_close(ours.weight["4"].sum((0, 2, 3)), per_channel(maps["pool.R"]),
                               rtol=1e-4, atol=1e-6)


def test_resnet18_relevance_is_finite_and_reaches_every_site():
    torch.manual_seed(0)
    model, batch = scoring_copy(build("resnet18", 1, 3)), batch_of(2, size=28)
    sites = find_sites(model, "channel")
    for preset in COMPOSITES:
        rel = relevance(model, sites, batch, composite_for(model, preset), "abs", weights=False)
        for site in sites:
            assert rel.channel[site.name].shape == (site.module.out_channels,)
            assert torch.isfinite(rel.channel[site.name]).all()
            assert rel.channel[site.name].sum() > 0, (preset, site.name)


def test_model_is_restored_after_relevance_even_on_error():
    model, batch = smallcnn(), batch_of(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(KeyError):
        relevance(model, find_sites(model, "weight"), batch, composite_for(model, "zplus"),
                  reduce="no-such-reduction")
    relevance(model, find_sites(model, "weight"), batch, composite_for(model, "zplus"))
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                   for m in model.modules())
