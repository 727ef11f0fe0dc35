"""Training: the baseline recipe, also used (at a lower rate) for fine-tune recovery.

Adam, batch 128, cross-entropy (BCE-with-logits for multi-label); after every epoch the
model is scored on the validation split and the best epoch by validation AUC (then ACC) is
kept, as in MedMNIST v2.
"""

from __future__ import annotations

import copy
import logging
import time

import torch
from torch import nn

from .api import MULTI_LABEL
from .data import Dataset
from .evaluate import task_scores

log = logging.getLogger(__name__)

BATCH_SIZE = 128
BASELINE_LR = 1e-3
FINETUNE_LR = 1e-4


def _key(scores: dict) -> tuple[float, float]:
    return (scores["auc"] if scores["auc"] is not None else -1.0, scores["acc"])


def train_epoch(model: nn.Module, dataset: Dataset, optimizer: torch.optim.Optimizer,
                generator: torch.Generator) -> float:
    """One pass over the training split in a seeded random order; returns the mean loss."""
    model.train()
    split, multi = dataset.train, dataset.info.task == MULTI_LABEL
    order = torch.randperm(len(split), generator=generator)
    total = 0.0
    for start in range(0, len(order), BATCH_SIZE):
        idx = order[start:start + BATCH_SIZE]
        logits = model(split.x[idx])
        y = split.y[idx]
        loss = (nn.functional.binary_cross_entropy_with_logits(logits, y) if multi
                else nn.functional.cross_entropy(logits, y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(split)


def fit(model: nn.Module, dataset: Dataset, epochs: int, lr: float, seed: int,
        include_start: bool = False) -> tuple[nn.Module, list[dict]]:
    """Train ``epochs`` epochs; return the best model on validation and the history.

    ``include_start`` lets the untrained starting point compete (used by fine-tuning, so
    recovery can never make the selected model worse on validation).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam((p for p in model.parameters() if p.requires_grad), lr=lr)
    task = dataset.info.task
    best = copy.deepcopy(model) if include_start else None
    best_val = task_scores(model, dataset.val, task) if include_start else None
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        loss = train_epoch(model, dataset, optimizer, generator)
        val = task_scores(model, dataset.val, task)
        history.append({"epoch": epoch, "loss": loss, "val": val,
                        "seconds": time.perf_counter() - start})
        log.info("epoch %d loss %.4f val acc %.4f auc %s", epoch, loss, val["acc"], val["auc"])
        if best_val is None or _key(val) > _key(best_val):
            best, best_val = copy.deepcopy(model), val
    return best.eval(), history
