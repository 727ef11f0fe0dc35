"""Training: the baseline recipe, also used (at a lower, constant rate) for fine-tune recovery.

The baseline recipe (``spec.BASELINE_RECIPE``, part of every baseline hash) fixes what the
first published baselines got wrong on small datasets (BreastMNIST: 546 images, 5 steps per
epoch, 40 Adam steps in all, BatchNorm statistics lagging the weights):

* Adam at 1e-3, batch 128, the learning rate decayed to 0 by a per-step cosine schedule;
* at least ``min_steps`` optimizer steps: a small dataset gets more epochs;
* every evaluated checkpoint first has its BatchNorm statistics re-estimated on training
  images with its current weights (``bn.recalibrate``), so stored statistics match the weights;
* about ``EVALS`` evenly spaced checkpoints are scored on the validation split; the selected
  one is the best by (AUC + balanced accuracy) / 2 among checkpoints that have not collapsed
  (balanced accuracy within 0.02 of chance), so a degenerate epoch cannot win on AUC alone.
"""

from __future__ import annotations

import copy
import logging
import math
import time

import torch
from torch import nn

from bench.compute import bn
from bench.compute import device as devices
from bench.compute.data import Dataset
from bench.compute.evaluate import collapsed, task_scores
from bench.core.axes import TaskType
from bench.core.spec import BASELINE_RECIPE

log = logging.getLogger(__name__)

BATCH_SIZE = int(BASELINE_RECIPE["batch"])
BASELINE_LR = float(BASELINE_RECIPE["lr"])
FINETUNE_LR = 1e-4
EVALS = int(BASELINE_RECIPE["evals"])
BN_IMAGES = int(BASELINE_RECIPE["bn_images"])


def selection_key(scores: dict, task: str, n_classes: int) -> tuple[bool, float]:
    """Checkpoint order: not collapsed first, then (AUC + balanced accuracy) / 2."""
    auc = scores["auc"] if scores["auc"] is not None else scores["bal_acc"]
    return (not collapsed(scores, task, n_classes), (auc + scores["bal_acc"]) / 2)


def steps_per_epoch(dataset: Dataset) -> int:
    return math.ceil(len(dataset.train) / BATCH_SIZE)


def planned_epochs(dataset: Dataset, epochs: int, min_steps: int) -> int:
    """``epochs``, raised so that training makes at least ``min_steps`` optimizer steps."""
    return max(epochs, math.ceil(min_steps / steps_per_epoch(dataset)))


def train_epoch(model: nn.Module, dataset: Dataset, optimizer: torch.optim.Optimizer,
                generator: torch.Generator, scheduler=None) -> float:
    """One pass over the training split in a seeded random order; returns the mean loss."""
    model.train()
    split, multi = dataset.train, dataset.info.task == TaskType.MULTI_LABEL
    order = torch.randperm(len(split), generator=generator)
    where = devices.of(model)
    total = 0.0
    for start in range(0, len(order), BATCH_SIZE):
        idx = order[start:start + BATCH_SIZE]
        logits = model(split.x[idx].to(where))
        y = split.y[idx].to(where)
        loss = (nn.functional.binary_cross_entropy_with_logits(logits, y) if multi
                else nn.functional.cross_entropy(logits, y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(idx)
    return total / len(split)


def evaluate_checkpoint(model: nn.Module, dataset: Dataset, seed: int) -> dict:
    """Validation scores after re-estimating BatchNorm statistics for the current weights."""
    bn.recalibrate(model, dataset, seed, BN_IMAGES)
    return task_scores(model, dataset.val, dataset.info.task)


def fit(model: nn.Module, dataset: Dataset, epochs: int, lr: float, seed: int,
        min_steps: int = 0, cosine: bool = True,
        include_start: bool = False) -> tuple[nn.Module, list[dict]]:
    """Train; return the selected checkpoint (see the module docstring) and the history.

    ``include_start`` lets the starting point compete (fine-tuning: recovery can then never
    make the selected model worse on validation than BatchNorm re-calibration alone).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    info = dataset.info
    epochs = planned_epochs(dataset, epochs, min_steps)
    optimizer = torch.optim.Adam((p for p in model.parameters() if p.requires_grad), lr=lr)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=epochs * steps_per_epoch(dataset)) if cosine else None)
    every = max(1, epochs // EVALS)
    best, best_key, history = None, None, []
    if include_start:
        val = evaluate_checkpoint(model, dataset, seed)
        best, best_key = copy.deepcopy(model), selection_key(val, info.task, info.n_classes)
        history.append({"epoch": 0, "step": 0, "val": val})
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        rate = optimizer.param_groups[0]["lr"]
        loss = train_epoch(model, dataset, optimizer, generator, scheduler)
        entry = {"epoch": epoch, "step": epoch * steps_per_epoch(dataset), "loss": loss, "lr": rate}
        if epoch % every == 0 or epoch == epochs:
            entry["val"] = val = evaluate_checkpoint(model, dataset, seed)
            key = selection_key(val, info.task, info.n_classes)
            if best_key is None or key > best_key:
                best, best_key = copy.deepcopy(model), key
            log.info("epoch %d loss %.4f val acc %.4f auc %s", epoch, loss, val["acc"], val["auc"])
        entry["seconds"] = time.perf_counter() - start
        history.append(entry)
    return best.eval(), history
