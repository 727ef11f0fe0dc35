"""Pruning: the selection policy, real channel removal, weight masks."""

import pytest
import torch
from torch import nn

from bench import models, prune, units


def test_layer_scope_removes_the_same_fraction_of_each_layer():
    values = [torch.tensor([5.0, 1.0, 3.0, 2.0]), torch.arange(10.0)]
    removed = prune.select_lowest(values, "layer", 0.5)
    assert removed[0].tolist() == [1, 3]
    assert removed[1].tolist() == [0, 1, 2, 3, 4]


def test_global_scope_ranks_l1_normalised_scores_together():
    # normalised: layer 0 -> [0.1, 0.9]; layer 1 -> [0.25, 0.25, 0.25, 0.25]
    values = [torch.tensor([1.0, 9.0]), torch.tensor([2.0, 2.0, 2.0, 2.0])]
    removed = prune.select_lowest(values, "global", 0.5)
    assert removed[0].tolist() == [0]
    assert removed[1].tolist() == [0, 1]


def test_no_layer_ever_loses_every_unit():
    values = [torch.tensor([0.0, 0.0]), torch.tensor([100.0, 200.0, 300.0])]
    for scope in ("layer", "global"):
        removed = prune.select_lowest(values, scope, 0.99)
        assert len(removed[0]) <= 1 and len(removed[1]) <= 2


@pytest.mark.parametrize("backbone", ["smallcnn", "vgg", "resnet18"])
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_channel_pruning_removes_channels_for_real(backbone, scope):
    torch.manual_seed(0)
    model = models.build(backbone, 1, 3).eval()
    sites = units.find_sites(model, "channel")
    scores = {s.name: torch.rand(s.shape) for s in sites}
    result = prune.prune(model, scores, "channel", scope, 0.5, torch.randn(1, 1, 28, 28))
    assert abs(result.achieved_sparsity - 0.5) < 0.02
    assert sum(p.numel() for p in result.model.parameters()) < sum(
        p.numel() for p in model.parameters())
    assert result.model(torch.randn(2, 1, 28, 28)).shape == (2, 3)
    assert units.find_sites(model, "channel")[0].shape == sites[0].shape  # original untouched


def test_channel_pruning_drops_exactly_the_lowest_scored_channels():
    torch.manual_seed(0)
    model = models.build("smallcnn", 1, 3).eval()
    kept_before = dict(model.named_modules())["0"].weight.detach().clone()
    scores = {s.name: torch.arange(s.shape[0], dtype=torch.float32)
              for s in units.find_sites(model, "channel")}
    result = prune.prune(model, scores, "channel", "layer", 0.25, torch.randn(1, 1, 28, 28))
    first = dict(result.model.named_modules())["0"].weight
    assert torch.equal(first, kept_before[4:])  # 16 channels, the 4 lowest (0..3) removed


def test_classifier_outputs_are_never_pruned():
    model = models.build("vgg", 1, 5).eval()
    scores = {s.name: torch.rand(s.shape) for s in units.find_sites(model, "channel")}
    result = prune.prune(model, scores, "channel", "global", 0.9, torch.randn(1, 1, 28, 28))
    assert result.model.classifier.out_features == 5


def test_weight_masks_zero_the_lowest_weights_and_finalize_keeps_them():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    scores = {"0": torch.arange(12.0).view(3, 4)}
    result = prune.prune(model, scores, "weight", "layer", 0.5, torch.randn(1, 4))
    assert result.masks["0"].flatten().tolist() == [0.0] * 6 + [1.0] * 6
    assert result.achieved_sparsity == 0.5
    final = prune.finalize(result)
    assert (final[0].weight.flatten()[:6] == 0).all()
    assert (final[0].weight.flatten()[6:] == model[0].weight.flatten()[6:]).all()
    assert not hasattr(final[0], "weight_orig")
