"""Measurements: ACC/AUC with MedMNIST's evaluator semantics, clinical metrics (sensitivity,
specificity, balanced accuracy, calibration), parameters, MACs and CPU latency with its spread."""

from __future__ import annotations

import math
import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch_pruning as tp
from medmnist.evaluator import getACC, getAUC
from torch import Tensor, nn

from bench.compute import device as devices
from bench.compute.data import Split
from bench.core import paths
from bench.core.axes import TaskType


@torch.inference_mode()
def predict(model: nn.Module, x: Tensor, task: str, batch_size: int = 512) -> np.ndarray:
    """Class probabilities (softmax), or per-label probabilities (sigmoid) for multi-label."""
    model.eval()
    where = devices.of(model)
    outs = [model(x[i:i + batch_size].to(where)) for i in range(0, len(x), batch_size)]
    logits = torch.cat(outs)
    probs = torch.sigmoid(logits) if task == TaskType.MULTI_LABEL else torch.softmax(logits, 1)
    return probs.cpu().numpy()


COLLAPSE_MARGIN = 0.02  # balanced accuracy within this of chance: the model has collapsed


def chance(task: str, n_classes: int) -> float:
    """Balanced accuracy of a constant (or random) predictor: 1/K, or 1/2 per binary label."""
    binary = task in (TaskType.BINARY, TaskType.MULTI_LABEL) or n_classes == 2
    return 0.5 if binary else 1.0 / n_classes


def collapsed(scores: dict[str, Any], task: str, n_classes: int) -> bool:
    """True when balanced accuracy is within ``COLLAPSE_MARGIN`` of chance."""
    return scores["bal_acc"] <= chance(task, n_classes) + COLLAPSE_MARGIN


def clinical(y_true: np.ndarray, y_score: np.ndarray, task: str) -> dict[str, float]:
    """Sensitivity, specificity, balanced accuracy and expected calibration error (torchmetrics).

    Predictions follow MedMNIST's ACC: argmax for multi-class, probability > 0.5 for binary
    (positive = class 1) and per label for multi-label. Multi-class sensitivity/specificity
    are macro averages over one-vs-rest classes (so sensitivity = balanced accuracy); for
    multi-label, macro over labels, balanced accuracy = mean of (sens + spec) / 2 per label.
    ECE: 15 equal-width bins, L1, on the top-class confidence (multi-class) or on every label's
    probability (binary, multi-label).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics' note about a non-contiguous bucketize input
        return _clinical(y_true, y_score, task)


def _clinical(y_true: np.ndarray, y_score: np.ndarray, task: str) -> dict[str, float]:
    from torchmetrics.functional import classification as tmc

    probs, target = torch.from_numpy(y_score).float(), torch.from_numpy(y_true).long()
    if task == TaskType.MULTI_LABEL:
        labels = probs.shape[1]
        sens = float(tmc.multilabel_recall(probs, target, labels, average="macro"))
        spec = float(tmc.multilabel_specificity(probs, target, labels, average="macro"))
        ece = float(tmc.binary_calibration_error(probs.flatten(), target.flatten()))
        return {"bal_acc": (sens + spec) / 2, "sens": sens, "spec": spec, "ece": ece}
    target = target.reshape(-1)
    if probs.shape[1] == 2:
        positive = probs[:, 1]
        sens = float(tmc.binary_recall(positive, target))
        spec = float(tmc.binary_specificity(positive, target))
        ece = float(tmc.binary_calibration_error(positive, target))
        return {"bal_acc": (sens + spec) / 2, "sens": sens, "spec": spec, "ece": ece}
    k = probs.shape[1]
    sens = float(tmc.multiclass_recall(probs, target, k, average="macro"))
    spec = float(tmc.multiclass_specificity(probs, target, k, average="macro"))
    ece = float(tmc.multiclass_calibration_error(probs, target, k))
    return {"bal_acc": sens, "sens": sens, "spec": spec, "ece": ece}


def task_scores(model: nn.Module, split: Split, task: str) -> dict[str, float | None]:
    """``acc``/``auc`` exactly as ``medmnist.evaluator`` computes them (AUC None if undefined),
    plus the clinical metrics of :func:`clinical`."""
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
    return {"acc": acc, "auc": auc, **clinical(y_true, y_score, task)}


def _site_positions(model: nn.Module, example: Tensor) -> dict[str, int]:
    """Output positions per Conv2d (H*W) / Linear (1, or T on T tokens): MACs per weight."""
    positions: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            def hook(mod, args, out, name=name):
                positions[name] = (int(out[0, 0].numel()) if out.ndim == 4
                                   else int(out.shape[1]) if out.ndim == 3 else 1)
            handles.append(module.register_forward_hook(hook))
    with torch.inference_mode():
        model.eval()(example)
    for handle in handles:
        handle.remove()
    return positions


def attention_macs(module: nn.Module, inputs: tuple, output: Tensor) -> None:
    """torch-pruning counter hook for a timm-style attention module: the MACs of its
    products, with biases counted as torch-pruning counts a Linear's (once per output).

    ``qkv`` T*D*3a (+3a), q @ k^T and attn @ v T*T*a each, ``proj`` T*a*D' (+D'), for T
    tokens of width D, a = heads * head_dim and D' = ``proj``'s outputs; softmax and the
    scaling are not multiply-accumulates. torch-pruning's own timm hook also counts those,
    per-token biases, and the projection as a x (a+1), which is wrong once heads are pruned.
    """
    batch, tokens, width = inputs[0].shape
    a, qkv, proj = module.proj.in_features, module.qkv, module.proj
    macs = (tokens * width * qkv.out_features + 2 * tokens * tokens * a
            + tokens * a * proj.out_features)
    macs += (qkv.out_features if qkv.bias is not None else 0) + (
        proj.out_features if proj.bias is not None else 0)
    module.__flops__ += int(batch * macs)


def cost(model: nn.Module, example: Tensor, masks: dict[str, Tensor] | None = None) -> dict[str, int]:
    """Parameters and MACs per image (torch-pruning's counter; attention modules through
    :func:`attention_macs`); masked weights count as removed.

    For unstructured masks the MAC count is ShrinkBench's non-zero MACs: each zeroed weight
    removes one multiply-accumulate per output position of its layer.
    """
    from torch_pruning.utils import op_counter

    from bench.compute.units import is_attention

    attention = {type(m) for m in model.modules() if is_attention(m)}
    if attention:  # consulted before its own table; reset by the counter after each count
        op_counter.CUSTOM_MODULES_MAPPING = dict.fromkeys(attention, attention_macs)
    macs, params = tp.utils.count_ops_and_params(model, example_inputs=example[:1])
    if masks:
        positions = _site_positions(model, example[:1])
        zeros = {name: int((mask == 0).sum()) for name, mask in masks.items()}
        params -= sum(zeros.values())
        macs -= sum(positions[name] * z for name, z in zeros.items())
    return {"params": int(params), "macs": int(macs)}


LATENCY_THREADS = 1  # latency is measured single-threaded: the same condition in every cell


def hardware() -> str:
    """The CPU latency figures come from, e.g. ``Intel Xeon ... (x86_64), 1 thread``."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({platform.machine()}), {LATENCY_THREADS} thread"


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median: order statistics x(t+1), x(n-t),
    with the largest t such that 2 * P(Bin(n, 1/2) <= t) <= 1 - level (the full range below
    n = 6, where no interval reaches 95%)."""
    from scipy.stats import binom

    xs, n = sorted(values), len(values)
    t = 0
    while t + 1 < n / 2 and 2 * binom.cdf(t + 1, n, 0.5) <= 1 - level:
        t += 1
    return xs[t], xs[n - 1 - t]


def _quartiles(values: list[float]) -> list[float]:
    q1, _, q3 = np.percentile(values, [25, 50, 75]).tolist()
    return [q1, q3]


def shape_signature(model: nn.Module) -> str:
    """A digest of what a forward pass computes with: module types and parameter shapes.

    Two models with the same architecture run the same kernels on the same shapes, so their
    latency is the same measurement (weight values, and masks' zeros, do not change dense
    kernels' work)."""
    import hashlib

    parts = [type(model).__name__]
    parts += [f"{name}:{type(m).__name__}:" + ",".join(sorted(
        f"{n}{tuple(p.shape)}" for n, p in m.named_parameters(recurse=False)))
        for name, m in model.named_modules()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cached_latency(dense: nn.Module, pruned: nn.Module, example: Tensor, batch: int,
                   repeats: int, cache_dir: Path) -> dict[str, Any]:
    """:func:`latency`, measured once per (dense, pruned) architecture pair on this machine
    and reused by every cell that prunes to the same shapes (layer-scope channel pruning
    gives every method the same architecture; weight masks keep the dense one)."""
    from bench.compute import cache

    key = "-".join([shape_signature(dense), shape_signature(pruned), str(tuple(example.shape[1:])),
                    f"b{batch}", f"r{repeats}", hashlib_short(hardware())])
    return cache.get_or_compute(paths.latency(key, cache_dir),
                                lambda: latency(dense, pruned, example, batch, repeats))


def hashlib_short(text: str) -> str:
    """8 hex digits of sha256: a file-name-safe tag for free text (the hardware string)."""
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


@torch.inference_mode()
def latency(dense: nn.Module, pruned: nn.Module, example: Tensor, batch: int,
            repeats: int) -> dict[str, Any]:
    """Interleaved CPU timing of the dense and the pruned model on ``batch`` images.

    Each repeat times both models back to back (alternating which goes first) with
    ``torch.utils.benchmark`` on one thread, so both see the same machine load. The measured
    speed-up is the median of the per-repeat ratios dense/pruned, with a 95% interval of that
    median; it is ``within_noise`` when the interval contains 1.
    """
    from torch.utils.benchmark import Timer

    x = example[:1].expand(batch, *example.shape[1:]).contiguous()
    timers = [Timer("model(x)", globals={"model": m.eval(), "x": x}, num_threads=LATENCY_THREADS)
              for m in (dense, pruned)]
    once = max(t.timeit(1).median for t in timers)  # warm-up, and a size for the inner loop
    number = max(1, min(50, math.ceil(2e-3 / max(once, 1e-6))))
    times: list[list[float]] = [[], []]
    for r in range(repeats):
        for i in ((0, 1) if r % 2 == 0 else (1, 0)):
            times[i].append(timers[i].timeit(number).median * 1000)
    ratios = [d / p for d, p in zip(*times)]
    low, high = median_interval(ratios)
    return {"dense_ms": float(np.median(times[0])), "dense_iqr_ms": _quartiles(times[0]),
            "pruned_ms": float(np.median(times[1])), "pruned_iqr_ms": _quartiles(times[1]),
            "speedup": float(np.median(ratios)), "speedup_ci": [low, high],
            "within_noise": bool(low <= 1.0 <= high), "repeats": repeats, "inner_loops": number}
