"""BatchNorm statistics: re-estimated on unlabelled training images for the current weights.

Used after structured pruning (every layer's input distribution changed) and by training
before every evaluated checkpoint (running averages lag the weights on short schedules).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.compute import device as devices
from bench.compute.data import Dataset

CHUNK = 128


@torch.no_grad()
def recalibrate(model: nn.Module, dataset: Dataset, seed: int, images: int) -> nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them as a cumulative average
    over ``images`` seeded training images (no labels); returns the model in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model.eval()
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average over all batches seen
        norm.train()
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(dataset.train), generator=gen)[:images]
    where = devices.of(model)
    for start in range(0, len(idx), CHUNK):
        model(dataset.train.x[idx[start:start + CHUNK]].to(where))
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()
