"""The CIFAR ResNet-20 backbone (He et al. 2016, section 4.2): its shape, its residual-coupled
channel pruning (torch-pruning dependency groups), LRP conservation through its residual
blocks (zennit's ResNet canonizer), and every CNN method scoring it."""

import pytest
import torch
import torch_pruning as tp
from torch import nn
from torchvision.models.resnet import BasicBlock
from zennit.canonizers import SequentialMergeBatchNorm

from bench import plugins
from bench.api import Batch
from bench.attribution.lrp import COMPOSITES, composite_for
from bench.compute import models, prune
from bench.compute.units import classifier_name, find_sites, scoring_copy
from bench.core import backbones, spec
from bench.core.spec import applicable

torch.set_num_threads(1)

STAGE1 = ["conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"]
# Parameters and MACs (28 px, 1 input channel) that one channel of the stage-1 residual group
# carries, by hand: the stem conv's filter (1 x 3 x 3) and its BN (2), each stage-1 block's
# conv2 filter (16 x 3 x 3) and BN (2) and its conv1's input slice (16 filters x 3 x 3), and
# the input slices of stage 2's first conv1 (32 x 3 x 3) and projection (32 x 1 x 1).
PARAMS_PER_CHANNEL = 9 + 2 + 3 * (16 * 9 + 2) + 3 * (16 * 9) + 32 * 9 + 32 * 1
MACS_PER_CHANNEL = (28 * 28 * 9 + 3 * 28 * 28 * 16 * 9 + 3 * 28 * 28 * 16 * 9
                    + 14 * 14 * 32 * 9 + 14 * 14 * 32)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet20_is_he_et_al_n3_with_projection_shortcuts():
    model = models.build("resnet20", 1, 2)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(blocks) == 9 and len(convs) == 19  # 6n + 1 conv layers, n = 3, + fc = 20
    assert [b.conv2.out_channels for b in blocks] == [16] * 3 + [32] * 3 + [64] * 3
    assert [b.downsample is not None for b in blocks] == [False] * 3 + [True, False, False] * 2
    assert classifier_name(model) == "fc" and model.fc.in_features == 64
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 2)
    assert "resnet20" in backbones.names() and spec.architecture("resnet20") == "cnn"


@pytest.mark.parametrize("name", sorted(spec.BACKBONE_SIZES))
def test_listed_backbone_sizes_are_the_built_models(name):
    """``xprune list backbones`` shows these numbers without importing torch."""
    model = models.build(name, 3, 8).eval()
    ops, params = tp.utils.count_ops_and_params(model, torch.randn(1, 3, 28, 28))
    assert (n_params(model), int(ops)) == (int(params), *spec.BACKBONE_SIZES[name][1:])
    assert n_params(model) == spec.BACKBONE_SIZES[name][0]
    assert set(spec.BACKBONE_SIZES) == set(backbones.names())


def test_residual_coupled_convs_of_a_stage_form_one_dependency_group():
    model = models.build("resnet20", 1, 2).eval()
    graph = prune.dependency_graph(model, torch.randn(1, 1, 28, 28))
    names = {m: n for n, m in model.named_modules()}
    groups = sorted(sorted(names[d.target.module] for d, _ in g
                           if d.handler == tp.prune_conv_out_channels)
                    for g in graph.get_all_groups(ignored_layers=[model.fc],
                                                  root_module_types=[nn.Conv2d, nn.Linear]))
    stage = [f"layer{s}.0.downsample.0" for s in (2, 3)]
    assert sorted(STAGE1) in groups
    for s, down in zip((2, 3), stage):
        assert sorted([down] + [f"layer{s}.{b}.conv2" for b in range(3)]) in groups
    singles = [[f"layer{s}.{b}.conv1"] for s in (1, 2, 3) for b in range(3)]
    assert all(single in groups for single in singles) and len(groups) == 12


def test_pruning_two_channels_of_the_stage1_group_drops_params_and_macs_as_by_hand():
    torch.manual_seed(0)
    model = models.build("resnet20", 1, 2).eval()
    example = torch.randn(1, 1, 28, 28)
    sites = find_sites(model, "channel")
    scores = {s.name: torch.ones(s.shape) for s in sites}
    for name in STAGE1:  # channels 3 and 7 of the stage-1 group score lowest of all units
        scores[name][[3, 7]] = 0.0
    units = 4 * (16 + 32 + 64)  # per stage: its residual group and its three blocks' conv1
    result = prune.prune(model, scores, "channel", "global", 2.5 / units, example)  # floor: 2
    pruned = result.model
    assert [pruned.get_submodule(n).out_channels for n in STAGE1] == [14] * 4
    assert n_params(model) - n_params(pruned) == 2 * PARAMS_PER_CHANNEL == 2402
    assert (models.macs(model, example) - models.macs(pruned, example)
            == 2 * MACS_PER_CHANNEL == 1_494_304)
    kept = [i for i in range(16) if i not in (3, 7)]
    torch.testing.assert_close(pruned.conv1.weight, model.conv1.weight[kept])
    assert result.achieved_sparsity == 8 / sum(s.shape[0] for s in sites)
    assert pruned(torch.randn(3, 1, 28, 28)).shape == (3, 2)


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("granularity", ["channel", "weight"])
def test_a_pruned_resnet20_runs_and_is_smaller(granularity, scope):
    torch.manual_seed(0)
    model = models.build("resnet20", 3, 4).eval()
    sites = find_sites(model, granularity)
    scores = {s.name: torch.rand(s.shape) for s in sites}
    result = prune.prune(model, scores, granularity, scope, 0.5, torch.randn(1, 3, 28, 28))
    final = prune.finalize(result)
    assert abs(result.achieved_sparsity - 0.5) < 0.02
    assert torch.isfinite(final(torch.randn(2, 3, 28, 28))).all()
    if granularity == "channel":
        assert n_params(final) < n_params(model)
    else:
        zeros = sum(int((final.get_submodule(s.name).weight == 0).sum()) for s in sites)
        assert zeros >= sum(s.weight.numel() for s in sites) // 2 - len(sites)


def _block_relevance(model: nn.Module, block: nn.Module, canonizers) -> tuple[float, float]:
    """Sum of epsilon-LRP relevance entering ``block``'s output and leaving at its input."""
    seen = {}

    def hook(module, args, output):
        args[0].register_hook(lambda g: seen.__setitem__("in", g))
        output.register_hook(lambda g: seen.__setitem__("out", g))

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 1, 28, 28, generator=gen).requires_grad_(True)
    composite = COMPOSITES["epsilon"](canonizers)
    handle = block.register_forward_hook(hook)
    try:
        with composite.context(model):
            logits = model(x)
            torch.autograd.grad(logits, x, nn.functional.one_hot(torch.arange(4) % 2, 2).float())
    finally:
        handle.remove()
    return float(seen["in"].sum()), float(seen["out"].sum())


@pytest.mark.parametrize("block", ["layer1.1", "layer2.0"])  # identity and projection shortcut
def test_lrp_epsilon_conserves_relevance_through_a_residual_block(block):
    """With zennit's ResNet canonizer the sum is a Sum module (Norm rule): relevance in = out.

    BatchNorm keeps its initial statistics, so the merged convs have no bias; relevance is
    then conserved up to the epsilon stabiliser (1e-6): relative tolerance 1e-4.
    """
    torch.manual_seed(0)
    model = scoring_copy(models.build("resnet20", 1, 2))
    canonizers = composite_for(model, "epsilon").canonizers
    r_in, r_out = _block_relevance(model, model.get_submodule(block), canonizers)
    assert abs(r_out) > 1e-3
    assert r_in == pytest.approx(r_out, rel=1e-4)


def test_without_the_resnet_canonizer_the_residual_sum_duplicates_relevance():
    """The negative control: a plain ``+`` passes the full gradient to both addends."""
    torch.manual_seed(0)
    model = scoring_copy(models.build("resnet20", 1, 2))
    r_in, r_out = _block_relevance(model, model.layer1[1], [SequentialMergeBatchNorm()])
    assert abs(r_in - r_out) > 0.1 * abs(r_out)


PLUGINS = {name: plugins.get(name).cls for name in plugins.catalogue().builtins()}
CNN_METHODS = sorted((name, g) for name, cls in PLUGINS.items() for g in cls.granularities
                     if applicable("resnet20", g, cls.architectures))


def test_every_cnn_method_applies_to_resnet20():
    transformer_only = {n for n, c in PLUGINS.items() if c.architectures == ("transformer",)}
    assert {n for n, _ in CNN_METHODS} == set(PLUGINS) - transformer_only
    assert transformer_only == {"lrp-attn"}


@pytest.mark.parametrize("name,granularity", CNN_METHODS)
def test_every_cnn_method_scores_resnet20(name, granularity):
    torch.manual_seed(0)
    model = scoring_copy(models.build("resnet20", 1, 3))
    batch = Batch(torch.randn(3, 1, 28, 28), torch.tensor([0, 1, 2]), "multi-class", 3)
    cls = PLUGINS[name]
    if hasattr(cls, "steps"):  # IG: 2 steps keep the test cheap
        cls = type(cls.__name__, (cls,), {"steps": 2})
    sites = find_sites(model, granularity)
    torch.manual_seed(1)
    scores = cls().score(model, sites, batch)
    assert set(scores) == {s.name for s in sites}
    for site in sites:
        assert tuple(scores[site.name].shape) == site.shape, site.name
        assert torch.isfinite(scores[site.name]).all(), site.name
    assert any(scores[s.name].abs().sum() > 0 for s in sites)


def test_the_resnet20_leaderboard_specs_plan_every_cnn_method_at_their_sparsities():
    from pathlib import Path

    root = Path(__file__).parent.parent / "benchmarks"
    catalogue = plugins.declarations()
    declared = {m: (catalogue.get(m).version, catalogue.get(m).granularities,
                    catalogue.get(m).architectures) for m in catalogue.expand(["*"])}
    channel, weight = (spec.expand(spec.override(spec.load_spec(str(root / name)),
                                                 methods=list(declared)), declared)
                       for name in ("leaderboard-resnet20.yaml", "leaderboard-resnet20-weight.yaml"))
    assert {c.backbone for c in channel + weight} == {"resnet20"}
    assert {c.method for c in channel} == {n for n, _ in CNN_METHODS}
    assert {c.method for c in weight} == {n for n, g in CNN_METHODS if g == "weight"}
    assert sorted({c.sparsity for c in channel}) == [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
    assert sorted({c.sparsity for c in weight}) == [0.3, 0.5, 0.7, 0.9]
    # datasets x seeds x methods x sparsities x scopes x recoveries
    assert len(channel) == 4 * 3 * 12 * 7 * 2 * 2 == 4032
    assert len(weight) == 4 * 3 * 7 * 4 * 2 * 2 == 1344
