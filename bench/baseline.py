"""Baselines: one trained model per (dataset, size, backbone, seed, epochs, min_steps) and
training recipe, cached by hash."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import cache, models
from . import device as devices
from .data import Dataset
from .evaluate import task_scores
from .spec import BASELINE_RECIPE, BaselineKey
from .train import BASELINE_LR, fit


def path(key: BaselineKey, cache_dir: Path, device: str = "cpu") -> Path:
    return cache_dir / "baselines" / devices.cache_name(key.hash, device)


def train(key: BaselineKey, dataset: Dataset, device: str = "cpu") -> dict[str, Any]:
    """Train from scratch on ``device`` and return the cache entry: weights plus metadata."""
    start = time.perf_counter()
    torch.manual_seed(key.seed)  # initial weights too: every process starts unseeded
    model = models.build(key.backbone, dataset.info.n_channels, dataset.info.n_classes)
    if device != "cpu":
        model = model.to(device)  # built on the CPU first: the same initial weights
    model, history = fit(model, dataset, key.epochs, BASELINE_LR, key.seed, key.min_steps)
    state = model.state_dict()
    return {
        "key": key.__dict__ | {"hash": key.hash},
        "recipe": BASELINE_RECIPE,
        "steps": history[-1]["step"],
        "state_dict": state if device == "cpu" else {k: v.cpu() for k, v in state.items()},
        "history": history,
        "val": task_scores(model, dataset.val, dataset.info.task),
        "test": task_scores(model, dataset.test, dataset.info.task),
        "seconds": time.perf_counter() - start,
    }


def get(key: BaselineKey, dataset: Dataset, cache_dir: Path,
        device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The trained baseline on ``device`` (trained first if not cached) and its metadata."""
    entry = cache.get_or_compute(path(key, cache_dir, device),
                                 lambda: train(key, dataset, device))
    model = models.build(key.backbone, dataset.info.n_channels, dataset.info.n_classes)
    model.load_state_dict(entry["state_dict"])
    if device != "cpu":
        model = model.to(device)
    return model.eval(), {k: v for k, v in entry.items() if k != "state_dict"}
