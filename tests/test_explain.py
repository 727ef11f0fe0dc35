"""Reference explainers and the probe set: exact specifications on tiny models and labels."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from bench.compute import explain, models
from bench.compute.explain import EXPLAINERS, Explainer, probe


def labels(counts: list[int]) -> torch.Tensor:
    """Class ids with ``counts[k]`` images of class k, interleaved so order carries no class."""
    y = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(123))]


# --- probe set ---------------------------------------------------------------------------


def test_probe_is_class_balanced_sorted_and_targets_true_class():
    y = labels([300, 40, 100])
    p = probe(y, 64, 3, seed=0, multi_label=False)
    assert len(p.index) == 64 and len(set(p.index.tolist())) == 64
    assert torch.equal(p.index, p.index.sort().values)
    assert torch.bincount(y[p.index], minlength=3).tolist() == [22, 21, 21]
    assert torch.equal(p.target, y[p.index])


def test_probe_is_seeded_and_stable():
    y = labels([300, 40, 100])
    a, b = probe(y, 64, 3, 0, False), probe(y, 64, 3, 0, False)
    assert torch.equal(a.index, b.index) and torch.equal(a.target, b.target)
    assert not torch.equal(a.index, probe(y, 64, 3, 1, False).index)


def test_probe_lets_other_classes_fill_in_for_a_small_class():
    y = labels([50, 5])
    p = probe(y, 20, 2, 0, False)
    assert torch.bincount(y[p.index], minlength=2).tolist() == [15, 5]
    assert len(probe(y, 1000, 2, 0, False).index) == 55  # more than exist: all of them


def test_probe_multi_label_targets_the_label_drawn_for():
    y = torch.zeros(40, 3)
    y[:20, 0] = 1
    y[10:30, 1] = 1   # images 10-19 are positive for labels 0 and 1
    y[30:34, 2] = 1
    p = probe(y, 12, 3, 0, multi_label=True)
    assert torch.bincount(p.target, minlength=3).tolist() == [4, 4, 4]
    assert all(y[i, k] == 1 for i, k in zip(p.index.tolist(), p.target.tolist()))
    assert len(set(p.index.tolist())) == 12


def test_probe_rejects_empty_size():
    with pytest.raises(ValueError):
        probe(labels([3, 3]), 0, 2, 0, False)


# --- every registered explainer ------------------------------------------------------------


@pytest.fixture
def tiny():
    """An untrained smallcnn (BatchNorm with non-trivial statistics) and 70 RGB images."""
    torch.manual_seed(0)
    model = models.build("smallcnn", 3, 4)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(70, 3, 12, 12, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return model.train(), x, torch.arange(70) % 4


@pytest.mark.parametrize("name", list(EXPLAINERS))
def test_maps_have_the_image_shape_and_are_finite_and_deterministic(name, tiny):
    model, x, target = tiny
    maps = EXPLAINERS.get(name)(model, x, target)
    assert maps.shape == (70, 12, 12) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and maps.abs().sum() > 0
    assert torch.equal(maps, EXPLAINERS.get(name)(model, x, target))


@pytest.mark.parametrize("name", list(EXPLAINERS))
def test_explainer_leaves_the_model_untouched(name, tiny):
    model, x, target = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    EXPLAINERS.get(name)(model, x, target)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._backward_hooks or m._forward_pre_hooks
                   for m in model.modules())


@pytest.mark.parametrize("name", list(EXPLAINERS))
def test_maps_do_not_depend_on_chunking(name, tiny):
    model, x, target = tiny
    whole = EXPLAINERS.get(name)(model, x, target)              # chunks of 64 + 6
    alone = torch.cat([EXPLAINERS.get(name)(model, x[i:i + 5], target[i:i + 5])
                       for i in range(0, 70, 5)])
    torch.testing.assert_close(whole, alone, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", list(EXPLAINERS))
def test_explainer_has_a_description(name):
    assert len(EXPLAINERS.get(name).description) > 40


def test_explainer_rejects_mismatched_targets(tiny):
    model, x, target = tiny
    with pytest.raises(ValueError):
        EXPLAINERS.get("ig")(model, x, target[:3])


# --- what the attribution methods promise ---------------------------------------------------


def bias_free_relu_net() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(32, 16, bias=False), nn.ReLU(), nn.Linear(16, 3, bias=False))


def test_lrp_conserves_relevance_on_a_bias_free_relu_net():
    """With the target logit seeded with 1, input relevance sums to 1 (x the logit: the logit)."""
    model = bias_free_relu_net()
    x = torch.rand(8, 1, 10, 10, generator=torch.Generator().manual_seed(4)) * 2 - 1
    target = torch.arange(8) % 3
    maps = explain.explain("lrp-epf", model, x, target)
    torch.testing.assert_close(maps.flatten(1).sum(1), torch.ones(8), rtol=0, atol=1e-4)


def test_ig_is_exact_for_a_polynomial_and_complete_on_a_relu_net():
    """Gauss-Legendre with 8 nodes integrates degree <= 15 exactly; ReLU kinks cost a little."""
    class Quadratic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(2, 36, generator=torch.Generator().manual_seed(5)))

        def forward(self, x):
            return (x.flatten(1) @ self.w.T) ** 2

    x = torch.rand(6, 1, 6, 6, generator=torch.Generator().manual_seed(6)) * 2 - 1
    target = torch.arange(6) % 2
    model = Quadratic()
    maps = explain.explain("ig", model, x, target)
    gap = model(x).gather(1, target[:, None]).flatten() - model(torch.zeros_like(x))[:, 0]
    torch.testing.assert_close(maps.flatten(1).sum(1), gap.detach(), rtol=1e-4, atol=1e-5)

    relu = bias_free_relu_net()
    x = torch.rand(16, 1, 10, 10, generator=torch.Generator().manual_seed(7)) * 2 - 1
    target = torch.arange(16) % 3
    ig32 = Explainer("ig32", "", partial(explain.integrated_gradients, steps=32))
    gap = relu(x).gather(1, target[:, None]).flatten().detach()  # F(0) = 0 without biases
    error = (ig32(relu, x, target).flatten(1).sum(1) - gap).abs().mean()
    assert error < 0.02 * gap.abs().mean()
