"""Recovery after pruning: none, BatchNorm re-calibration, or a few epochs of fine-tuning."""

from __future__ import annotations

import time

import torch
from torch import nn

from .data import Dataset
from .train import FINETUNE_LR, fit

BNRECAL_IMAGES = 512


@torch.no_grad()
def recalibrate_bn(model: nn.Module, dataset: Dataset, seed: int) -> nn.Module:
    """Re-estimate BatchNorm running statistics on unlabelled training images.

    Structured pruning changes every layer's input distribution, so the stored statistics
    no longer match; a cumulative average over a few hundred images fixes that.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model
    model.eval()
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over all batches seen
        bn.train()
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(dataset.train), generator=gen)[:BNRECAL_IMAGES]
    for start in range(0, len(idx), 128):
        model(dataset.train.x[idx[start:start + 128]])
    for bn in norms:
        bn.momentum = 0.1
    return model.eval()


def recover(model: nn.Module, recovery: str, dataset: Dataset, seed: int) -> tuple[nn.Module, float]:
    """Apply a recovery strategy (``none`` | ``bnrecal`` | ``finetune:K``); return model, seconds."""
    start = time.perf_counter()
    if recovery == "bnrecal":
        model = recalibrate_bn(model, dataset, seed)
    elif recovery.startswith("finetune:"):
        epochs = int(recovery.split(":", 1)[1])
        model, _ = fit(model, dataset, epochs, FINETUNE_LR, seed, include_start=True)
    return model.eval(), time.perf_counter() - start
