"""Recovery after pruning: none, BatchNorm re-calibration, or a few epochs of fine-tuning."""

from __future__ import annotations

import time

from torch import nn

from bench.compute import bn
from bench.compute.data import Dataset
from bench.compute.train import FINETUNE_LR, fit
from bench.core.axes import Recovery, RecoveryKind

BNRECAL_IMAGES = 512


def recover(model: nn.Module, recovery: str | Recovery, dataset: Dataset,
            seed: int) -> tuple[nn.Module, float]:
    """Apply a recovery strategy (``none`` | ``bnrecal`` | ``finetune:K``); return model, seconds.

    ``bnrecal`` re-estimates BatchNorm statistics on 512 unlabelled training images.
    ``finetune:K``: K epochs of Adam at a constant 1e-4; every checkpoint (the pruned start
    included) is BatchNorm-recalibrated and scored on validation, and the best is kept.
    """
    recovery = Recovery(recovery)
    start = time.perf_counter()
    if recovery.kind is RecoveryKind.BNRECAL:
        model = bn.recalibrate(model, dataset, seed, BNRECAL_IMAGES)
    elif recovery.kind is RecoveryKind.FINETUNE:
        model, _ = fit(model, dataset, recovery.epochs, FINETUNE_LR, seed, cosine=False,
                       include_start=True)
    return model.eval(), time.perf_counter() - start
