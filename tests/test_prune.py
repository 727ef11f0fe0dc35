"""Pruning: the selection policy, real channel removal, weight masks."""

import pytest
import torch
from torch import nn

from bench.compute import models, prune, units


def test_layer_scope_removes_the_same_fraction_of_each_layer():
    values = [torch.tensor([5.0, 1.0, 3.0, 2.0]), torch.arange(10.0)]
    removed = prune.select_lowest(values, "layer", 0.5).indices
    assert sorted(removed[0].tolist()) == [1, 3]
    assert sorted(removed[1].tolist()) == [0, 1, 2, 3, 4]


def test_global_scope_ranks_l1_normalised_scores_together():
    # normalised: layer 0 -> [0.1, 0.9]; layer 1 -> [0.2, 0.2, 0.3, 0.3]
    values = [torch.tensor([1.0, 9.0]), torch.tensor([2.0, 2.0, 3.0, 3.0])]
    selection = prune.select_lowest(values, "global", 0.5)
    assert selection.indices[0].tolist() == [0]
    assert sorted(selection.indices[1].tolist()) == [0, 1]
    assert selection.tied == 0  # the cut (3 of 6) falls between 0.2 and 0.3


def test_no_layer_ever_loses_every_unit():
    values = [torch.tensor([0.0, 0.0]), torch.tensor([100.0, 200.0, 300.0])]
    for scope in ("layer", "global"):
        removed = prune.select_lowest(values, scope, 0.99).indices
        assert len(removed[0]) == 1 and len(removed[1]) == 2


def test_ties_are_broken_by_the_seed_not_by_position():
    values = [torch.zeros(100)]
    picks = {seed: sorted(prune.select_lowest(values, "layer", 0.1, seed).indices[0].tolist())
             for seed in range(4)}
    assert all(len(p) == 10 for p in picks.values())
    assert picks[0] != list(range(10))  # a stable sort alone would take the first ten
    assert len({tuple(p) for p in picks.values()}) == 4  # each seed its own draw
    assert picks[0] == sorted(prune.select_lowest(values, "layer", 0.1, 0).indices[0].tolist())


def test_tie_share_counts_the_tie_group_straddling_the_cut():
    # layer 0: cut after 2 of [1, 2, 2, 2, 5] -> the group {2, 2, 2} straddles it (3 units);
    # layer 1: cut after 2 of [1, 2, 3, 3] -> no tie at the cut.
    values = [torch.tensor([1.0, 2.0, 2.0, 2.0, 5.0]), torch.tensor([1.0, 2.0, 3.0, 3.0])]
    selection = prune.select_lowest(values, "layer", 0.5)
    assert selection.tied == 3 and selection.total == 9
    assert selection.tie_share == 3 / 9
    removed = selection.indices[0].tolist()
    assert 0 in removed and len(removed) == 2 and removed[1] in (1, 2, 3)


def test_tie_share_is_zero_when_a_whole_tie_group_is_removed():
    values = [torch.tensor([1.0, 1.0, 5.0, 6.0])]
    assert prune.select_lowest(values, "layer", 0.5).tied == 0


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
    assert result.achieved_sparsity == 0.5 and result.tie_share == 0.0
    final = prune.finalize(result)
    assert (final[0].weight.flatten()[:6] == 0).all()
    assert (final[0].weight.flatten()[6:] == model[0].weight.flatten()[6:]).all()
    assert not hasattr(final[0], "weight_orig")
