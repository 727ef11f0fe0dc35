"""Constructed, schema-valid records for tests of publish, summary and render.

These records are built by hand (no model is trained): every one passes
``bench.results.records.validate`` and carries the cell hash that ``bench.core.spec.Cell`` computes,
so they exercise exactly the code paths that real runner output does.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from bench.core.spec import Cell
from bench.results.records import SCHEMA_VERSION, validate

METHOD_META = {
    "magnitude": ("magnitude", "L1 norm of each unit's weights.", "https://arxiv.org/abs/1608.08710"),
    "random": ("random", "Uniformly random scores (lower bound).", "none"),
    "taylor": ("taylor", "First-order Taylor expansion of the loss.", "https://arxiv.org/abs/1611.06440"),
}


def make_cell(dataset: str = "synthetic", backbone: str = "smallcnn", method: str = "magnitude",
              granularity: str = "channel", scope: str = "layer", sparsity: float = 0.5,
              recovery: str = "bnrecal", seed: int = 0, version: str = "1",
              min_steps: int | None = 0) -> dict[str, Any]:
    """The ``cell`` block of a record, as the runner writes it (``min_steps=None``: schema 1)."""
    cell = {"dataset": dataset, "size": 28, "backbone": backbone, "method": method,
            "method_version": version, "granularity": granularity, "scope": scope,
            "sparsity": float(sparsity), "recovery": recovery, "seed": seed,
            "epochs": 10, "reference_per_class": 10}
    return cell if min_steps is None else {**cell, "min_steps": min_steps}


def _scores(acc: float, auc: float | None, bal_acc: float) -> dict[str, Any]:
    return {"acc": acc, "auc": auc, "bal_acc": bal_acc, "sens": bal_acc, "spec": 0.9, "ece": 0.05}


def _timing(dense_ms: float, pruned_ms: float) -> dict[str, Any]:
    ratio = dense_ms / pruned_ms
    return {"dense_ms": dense_ms, "dense_iqr_ms": [dense_ms * 0.95, dense_ms * 1.05],
            "pruned_ms": pruned_ms, "pruned_iqr_ms": [pruned_ms * 0.95, pruned_ms * 1.05],
            "speedup": ratio, "speedup_ci": [ratio * 0.9, ratio * 1.1],
            "within_noise": ratio * 0.9 <= 1 <= ratio * 1.1, "repeats": 11}


def _transparency(spearman: float, maps: bool = False) -> dict[str, Any]:
    agreement = {"spearman": spearman, "iou_top10": spearman / 2, "deletion_dense": 0.3,
                 "deletion_pruned": 0.35}
    block = {"probe": {"images": 64, "seed": 0, "split": "test"},
             "explainers": {"lrp-epf": "test LRP", "ig": "test IG"},
             "lrp-epf": agreement, "ig": agreement}
    if maps:  # three 8x8 images with a blob of relevance, encoded as the runner stores them
        import torch

        from bench.compute.transparency import encode

        gen = torch.Generator().manual_seed(0)
        images = torch.rand(3, 1, 8, 8, generator=gen) * 2 - 1
        dense = torch.zeros(3, 8, 8)
        dense[:, 2:5, 3:6] = 1.0
        pruned = dense * spearman + torch.rand(3, 8, 8, generator=gen) * (1 - spearman)
        block["maps"] = {"explainer": "lrp-epf", "index": [0, 1, 2], "image_shape": [1, 8, 8],
                         "images": [encode(i, False) for i in images],
                         "dense": [encode(m, True) for m in dense],
                         "pruned": [encode(m, True) for m in pruned]}
    return block


def make_metrics(acc: float, dense_acc: float, sparsity: float, auc: float | None = 0.9,
                 macs_dense: int = 1_000_000, score_seconds: float = 0.5,
                 bal_acc: float | None = None, schema: int = 2,
                 preserved: float | None = None, maps: bool = False) -> dict[str, Any]:
    """A metrics block whose MACs/params shrink with sparsity (schema 1 or 2)."""
    macs = round(macs_dense * (1 - sparsity) ** 2)
    params = round(50_000 * (1 - sparsity) ** 2)
    common = {
        "params_dense": 50_000, "params": params, "macs_dense": macs_dense, "macs": macs,
        "compression": 50_000 / max(params, 1), "achieved_sparsity": sparsity,
        "score_seconds": score_seconds, "prune_seconds": 0.1, "recover_seconds": 1.0,
    }
    if schema == 1:
        return {**common, "dense": {"acc": dense_acc, "auc": 0.97},
                "pruned": {"acc": acc - 0.05, "auc": auc}, "recovered": {"acc": acc, "auc": auc},
                "speedup": macs_dense / max(macs, 1),
                "latency_ms": {"dense_b1": 2.0, "pruned_b1": 2.0 * (1 - sparsity) + 0.1,
                               "dense_b64": 40.0, "pruned_b64": 40.0 * (1 - sparsity) + 1.0}}
    bal = acc if bal_acc is None else bal_acc
    return {**common, "dense": _scores(dense_acc, 0.97, dense_acc),
            "pruned": _scores(acc - 0.05, auc, bal - 0.05), "recovered": _scores(acc, auc, bal),
            "chance": 1 / 3, "collapsed": bal <= 1 / 3 + 0.02,
            "mac_reduction": macs_dense / max(macs, 1), "tie_share": 0.0,
            "transparency": None if preserved is None else _transparency(preserved, maps),
            "latency": {"hardware": "test CPU (x86_64), 1 thread", "threads": 1,
                        "b1": _timing(2.0, 2.0 * (1 - sparsity) + 0.1),
                        "b64": _timing(40.0, 40.0 * (1 - sparsity) + 1.0)}}


KERNELS = {"pinned": True, "cpu_capability": "AVX2", "cpu_model": "Test CPU", "onednn": "3.13.3",
           "blas": "mkl 2024.2", "env": {"ATEN_CPU_CAPABILITY": "avx2",
                                         "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT"}}


def make_record(acc: float = 0.9, dense_acc: float = 0.95, auc: float | None = 0.9,
                status: str = "ok", description: str | None = None,
                macs_dense: int = 1_000_000, score_seconds: float = 0.5,
                bal_acc: float | None = None, schema: int = SCHEMA_VERSION,
                preserved: float | None = None, maps: bool = False,
                **cell_fields: Any) -> dict[str, Any]:
    """One validated record; ``cell_fields`` go to :func:`make_cell`."""
    cell = make_cell(**cell_fields, **({"min_steps": None} if schema == 1 else {}))
    key = Cell.from_dict({"min_steps": 0, **cell})
    family, desc, ref = METHOD_META.get(cell["method"], ("other", "A test method.", "none"))
    record = {
        "schema_version": schema,
        "cell_hash": key.hash,
        "status": status,
        "error": None if status == "ok" else "PluginError: scores contain NaN",
        "cell": cell,
        "method": {"name": cell["method"], "family": family,
                   "description": desc if description is None else description,
                   "reference": ref, "version": cell["method_version"],
                   "source": f"methods/{cell['method']}.py"},
        "dataset": {"flag": cell["dataset"], "task": "multi-class", "n_classes": 3,
                    "synthetic": cell["dataset"] == "synthetic", "md5": "0" * 32},
        "metrics": (make_metrics(acc, dense_acc, cell["sparsity"], auc, macs_dense, score_seconds,
                                 bal_acc, schema, preserved, maps) if status == "ok" else None),
        "provenance": {"xprune_version": "0.1.0", "git_commit": "a" * 40,
                       "baseline_hash": key.baseline.hash,
                       "versions": {"python": "3.11.9", "torch": "2.3.0"},
                       "created": "2026-01-01T00:00:00+00:00", "seconds": 3.0},
    }
    if schema >= 3:
        record["provenance"] |= {"baseline_digest": "d" * 64 if status == "ok" else None,
                                 "kernels": KERNELS}
    return validate(record, "factory record")


def variant(record: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy with dotted-path changes, e.g. ``{"metrics.recovered.acc": 0.5}``."""
    out = copy.deepcopy(record)
    for dotted, value in changes.items():
        node = out
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return out


def curve(accs: dict[float, float], dense_acc: float = 0.95, **fields: Any) -> list[dict[str, Any]]:
    """Records of one method and seed at several sparsities: ``{sparsity: acc}``."""
    return [make_record(acc=a, dense_acc=dense_acc, sparsity=s, **fields) for s, a in accs.items()]


# ------------------------------------------------------------------ a realistic grid

BUILTIN_METHODS = {  # name -> also prunes weights (the 7 methods that declare weight)
    "random": True, "magnitude": True, "taylor": True, "activation": False, "gradient": False,
    "bn-scale": False, "lrp-epsilon": True, "lrp-gamma": True, "lrp-alphabeta": False,
    "ig": True, "backtrace": True, "backtrace-contrast": False,
}


def _unit(*parts: Any) -> float:
    """A deterministic pseudo-random number in [0, 1) from its arguments (no global state)."""
    import hashlib

    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def grid(datasets: tuple[str, ...] = ("bloodmnist", "breastmnist", "pneumoniamnist", "retinamnist"),
         backbones: tuple[str, ...] = ("smallcnn", "vgg"),
         methods: dict[str, bool] | None = None, scopes: tuple[str, ...] = ("layer", "global"),
         sparsities: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9),
         recoveries: tuple[str, ...] = ("none", "bnrecal"),
         seeds: tuple[int, ...] = (0, 1, 2)) -> list[dict[str, Any]]:
    """Records shaped like a republished grid, with plausible, deterministic numbers.

    Each method has a hidden quality; accuracy falls with sparsity the faster the worse the
    method, plus seed noise; a point near chance is collapsed; channel pruning speeds up
    (measured), weight masks do not (speed-up within noise); explanation preservation falls
    with sparsity. For render-time and page-weight measurements, and browser tests.
    """
    methods = BUILTIN_METHODS if methods is None else methods
    out = []
    for d, b, (m, weight), scope, rec, seed in itertools.product(
            datasets, backbones, methods.items(), scopes, recoveries, seeds):
        dense = 0.78 + 0.15 * _unit(d, b) + 0.02 * _unit(d, b, seed)
        quality = 0.2 + 0.8 * _unit(m, d)
        for gran in ("channel", "weight") if weight else ("channel",):
            for s in sparsities:
                drop = (1 - quality) * s ** 2 * (0.9 if gran == "channel" else 0.4)
                drop *= 0.6 if rec == "bnrecal" else 1.0
                acc = max(0.2, dense - drop + 0.02 * (_unit(m, d, b, s, seed, gran) - 0.5))
                collapsed = acc < 0.4
                r = make_record(acc=acc, dense_acc=dense, auc=min(1.0, acc + 0.05),
                                bal_acc=1 / 3 + 0.01 if collapsed else acc, dataset=d,
                                backbone=b, method=m, granularity=gran, scope=scope, sparsity=s,
                                recovery=rec, seed=seed, preserved=1 - drop - 0.1 * s)
                lat = r["metrics"]["latency"]["b64"]
                ratio = (1 / (1 - s) ** 1.2 if gran == "channel" else 1.0) * (
                    0.95 + 0.1 * _unit("lat", m, d, b, s, seed, gran))
                lat.update(pruned_ms=lat["dense_ms"] / ratio, speedup=ratio,
                           speedup_ci=[ratio * 0.9, ratio * 1.1],
                           within_noise=ratio * 0.9 <= 1 <= ratio * 1.1)
                r["metrics"]["score_seconds"] = 0.01 + 2 * _unit("score", m)
                out.append(r)
    return out
