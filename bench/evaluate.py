"""Measurements: ACC/AUC with MedMNIST's evaluator semantics, parameters, MACs, CPU latency."""

from __future__ import annotations

import math
import statistics
import time
import warnings

import numpy as np
import torch
import torch_pruning as tp
from medmnist.evaluator import getACC, getAUC
from torch import Tensor, nn

from .api import MULTI_LABEL
from .data import Split


@torch.inference_mode()
def predict(model: nn.Module, x: Tensor, task: str, batch_size: int = 512) -> np.ndarray:
    """Class probabilities (softmax), or per-label probabilities (sigmoid) for multi-label."""
    model.eval()
    outs = [model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    logits = torch.cat(outs)
    probs = torch.sigmoid(logits) if task == MULTI_LABEL else torch.softmax(logits, 1)
    return probs.numpy()


def task_scores(model: nn.Module, split: Split, task: str) -> dict[str, float | None]:
    """``{"acc", "auc"}`` exactly as ``medmnist.evaluator`` computes them; AUC None if undefined."""
    y_score = predict(model, split.x, task)
    y_true = split.y.numpy()
    acc = float(getACC(y_true, y_score, task))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns (or raises) when AUC is undefined
        try:
            auc: float | None = float(getAUC(y_true, y_score, task))
        except ValueError:
            auc = None
    if auc is not None and not math.isfinite(auc):  # a class absent from y_true: undefined
        auc = None
    return {"acc": acc, "auc": auc}


def _site_positions(model: nn.Module, example: Tensor) -> dict[str, int]:
    """Output positions per Conv2d (H*W) / Linear (1): MACs per weight of each layer."""
    positions: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            def hook(mod, args, out, name=name):
                positions[name] = int(out[0, 0].numel()) if out.ndim == 4 else 1
            handles.append(module.register_forward_hook(hook))
    with torch.inference_mode():
        model.eval()(example)
    for handle in handles:
        handle.remove()
    return positions


def cost(model: nn.Module, example: Tensor, masks: dict[str, Tensor] | None = None) -> dict[str, int]:
    """Parameters and MACs per image (torch-pruning's counter); masked weights count as removed.

    For unstructured masks the MAC count is ShrinkBench's non-zero MACs: each zeroed weight
    removes one multiply-accumulate per output position of its layer.
    """
    macs, params = tp.utils.count_ops_and_params(model, example_inputs=example[:1])
    if masks:
        positions = _site_positions(model, example[:1])
        zeros = {name: int((mask == 0).sum()) for name, mask in masks.items()}
        params -= sum(zeros.values())
        macs -= sum(positions[name] * z for name, z in zeros.items())
    return {"params": int(params), "macs": int(macs)}


@torch.inference_mode()
def latency_ms(model: nn.Module, example: Tensor, batch: int, repeats: int) -> float:
    """Median wall-clock milliseconds of one forward pass on ``batch`` images (after warm-up)."""
    model.eval()
    x = example[:1].expand(batch, *example.shape[1:]).contiguous()
    model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
