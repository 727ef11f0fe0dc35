"""Measurements: MedMNIST metric semantics, parameter and MAC counts."""

import numpy as np
import torch
from medmnist.evaluator import getACC, getAUC
from torch import nn

from bench import evaluate, prune
from bench.data import Split


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


def test_latency_is_a_positive_median():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    ms = evaluate.latency_ms(model, torch.randn(1, 1, 4, 4), batch=8, repeats=5)
    assert ms > 0 and np.isfinite(ms)
