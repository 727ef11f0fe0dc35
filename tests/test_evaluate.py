"""Measurements: MedMNIST metric semantics, parameter and MAC counts."""

import numpy as np
import pytest
import torch
from medmnist.evaluator import getACC, getAUC
from torch import nn

from bench.compute import evaluate, prune
from bench.compute.data import Split


class Fixed(nn.Module):
    """Returns stored logits, whatever the input: lets a test pin the predictions."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[: len(x)]


def test_binary_scores_match_medmnist_evaluator():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.5], [0.3, 0.1]])
    y = torch.tensor([0, 1, 0, 0])
    got = evaluate.task_scores(Fixed(logits), Split(torch.zeros(4, 1), y), "binary-class")
    probs = torch.softmax(logits, 1).numpy()
    assert got["acc"] == getACC(y.numpy(), probs, "binary-class") == 0.75
    assert got["auc"] == getAUC(y.numpy(), probs, "binary-class")


def test_multi_label_uses_sigmoid_per_label():
    logits = torch.tensor([[3.0, -3.0], [-3.0, 3.0], [3.0, 3.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    got = evaluate.task_scores(Fixed(logits), Split(torch.zeros(3, 1), y),
                               "multi-label, binary-class")
    assert got["acc"] == (1.0 + 2 / 3) / 2


def test_auc_is_none_when_a_class_is_absent():
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    got = evaluate.task_scores(Fixed(logits), Split(torch.zeros(2, 1), torch.tensor([0, 1])),
                               "multi-class")
    assert got["acc"] == 1.0 and got["auc"] is None


def test_masked_weights_are_not_counted_as_params_or_macs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    example = torch.randn(1, 1, 8, 8)
    dense = evaluate.cost(model, example)
    assert dense["params"] == 4 * 9 + 4 + 256 * 2 + 2
    scores = {"0": torch.arange(36.0).view(4, 1, 3, 3)}
    pruned = prune.prune(model, scores, "weight", "layer", 0.5, example)
    after = evaluate.cost(prune.finalize(pruned), example, pruned.masks)
    assert after["params"] == dense["params"] - 18
    assert after["macs"] == dense["macs"] - 18 * 64  # each conv weight works at 8x8 positions


def test_latency_interleaves_and_measures_a_real_speed_up():
    torch.manual_seed(0)
    big = nn.Sequential(nn.Flatten(), *[nn.Linear(512, 512) for _ in range(6)], nn.Linear(512, 2))
    small = nn.Sequential(nn.Flatten(), nn.Linear(512, 2))
    got = evaluate.latency(big, small, torch.randn(1, 2, 16, 16), batch=16, repeats=7)
    assert got["repeats"] == 7 and got["dense_ms"] > got["pruned_ms"] > 0
    assert got["dense_iqr_ms"][0] <= got["dense_ms"] <= got["dense_iqr_ms"][1]
    low, high = got["speedup_ci"]
    assert 1 < low <= got["speedup"] <= high and got["within_noise"] is False


def test_median_interval_uses_binomial_order_statistics():
    # 95% distribution-free intervals of the median: ranks (2, 10) for n = 11, (6, 15) for n = 20
    assert evaluate.median_interval(list(range(1, 12))) == (2, 10)
    assert evaluate.median_interval(list(range(1, 21))) == (6, 15)
    assert evaluate.median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)  # n < 6: the full range


def test_binary_sensitivity_specificity_and_balanced_accuracy():
    # positive = class 1; predictions (p1 > 0.5): 1, 1, 0, 0, 1 for labels 1, 1, 1, 0, 0
    p1 = np.array([0.9, 0.6, 0.2, 0.3, 0.7])
    got = evaluate.clinical(np.array([1, 1, 1, 0, 0]), np.stack([1 - p1, p1], 1), "binary-class")
    assert got["sens"] == pytest.approx(2 / 3) and got["spec"] == pytest.approx(1 / 2)
    assert got["bal_acc"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_multi_class_metrics_are_macro_averages():
    # argmax predictions 0, 1, 1, 2 for labels 0, 1, 2, 2
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])
    got = evaluate.clinical(np.array([0, 1, 2, 2]), probs, "multi-class")
    assert got["sens"] == pytest.approx((1 + 1 + 0.5) / 3) == got["bal_acc"]
    # specificity per class: 3/3, 2/3 (one false positive for class 1), 2/2
    assert got["spec"] == pytest.approx((1 + 2 / 3 + 1) / 3)


def test_a_perfectly_calibrated_toy_has_zero_ece_and_an_overconfident_one_does_not():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert evaluate.clinical(np.array([0, 1, 0]), probs, "multi-class")["ece"] == 0.0
    # confidence 0.9 everywhere, half right: ECE = |0.9 - 0.5| = 0.4
    probs = np.array([[0.9, 0.1, 0.0]] * 4)
    got = evaluate.clinical(np.array([0, 0, 1, 2]), probs, "multi-class")
    assert got["ece"] == pytest.approx(0.4, abs=1e-6)


def test_a_constant_predictor_is_collapsed():
    logits = torch.tensor([[2.0, 0.0, 0.0]] * 6)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    got = evaluate.task_scores(Fixed(logits), Split(torch.zeros(6, 1), y), "multi-class")
    assert got["bal_acc"] == pytest.approx(1 / 3) and evaluate.chance("multi-class", 3) == 1 / 3
    assert evaluate.collapsed(got, "multi-class", 3)
    assert not evaluate.collapsed({**got, "bal_acc": 0.4}, "multi-class", 3)


def test_latency_is_measured_once_per_architecture_pair(tmp_path):
    from bench.compute import models, units

    torch.manual_seed(0)
    dense = models.build("smallcnn", 1, 3).eval()
    example = torch.randn(1, 1, 28, 28)
    pruned = [prune.prune(dense, {s.name: torch.rand(s.shape) for s in units.find_sites(
        dense, "channel")}, "channel", "layer", 0.5, example, seed).model for seed in (0, 1)]
    # layer scope removes the same number of channels per layer: same shapes, other channels
    assert evaluate.shape_signature(pruned[0]) == evaluate.shape_signature(pruned[1])
    assert evaluate.shape_signature(pruned[0]) != evaluate.shape_signature(dense)
    first = evaluate.cached_latency(dense, pruned[0], example, 4, 3, tmp_path)
    assert len(list((tmp_path / "latency").glob("*.pt"))) == 1
    assert evaluate.cached_latency(dense, pruned[1], example, 4, 3, tmp_path) == first
    evaluate.cached_latency(dense, dense, example, 4, 3, tmp_path)
    assert len(list((tmp_path / "latency").glob("*.pt"))) == 2
