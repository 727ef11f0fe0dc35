"""One benchmark cell, top to bottom, and the record it produces.

    load data -> baseline (cached) -> scores (cached) -> prune -> recover -> measure -> record

Each step is one call into the module that owns it. ``execute`` is what a worker process
runs for any task (baseline, scores or cell); exceptions become one-line failures.
"""

from __future__ import annotations

import copy
import datetime
import functools
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from . import (__version__, baseline, data, device as devices, evaluate, plugins, prune,
               recover, scoring, soundness, transparency)
from .errors import XPruneError
from .records import SCHEMA_VERSION
from .spec import BaselineKey, Cell, ScoreKey

LATENCY_REPEATS = {1: 21, 64: 11}  # interleaved dense/pruned pairs per batch size


def run_cell(cell: Cell, cache_dir: Path, device: str = "cpu") -> dict[str, Any]:
    """Run one cell on ``device`` and return its metrics (everything a record's ``metrics``
    holds). Latency is measured on the CPU always, and on the GPU too for a CUDA cell."""
    dataset = data.load(cell.dataset, cell.size)
    info, test = dataset.info, dataset.test
    example = test.x[:1].to(device)

    model, base_meta = baseline.get(cell.baseline, dataset, cache_dir, device)
    scored = scoring.get(cell.scores, model, dataset, cache_dir, device)

    pruned = prune.prune(model, scored["scores"], cell.granularity, cell.scope, cell.sparsity,
                         example, cell.seed)
    after_prune = evaluate.task_scores(pruned.model, test, info.task)

    pruned.model, recover_seconds = recover.recover(pruned.model, cell.recovery, dataset, cell.seed)
    final = prune.finalize(pruned)
    after_recovery = (after_prune if cell.recovery == "none"  # the same model: same scores
                      else evaluate.task_scores(final, test, info.task))

    dense_cost = evaluate.cost(model, example)
    pruned_cost = evaluate.cost(final, example, pruned.masks)
    latency = cpu_latency(model, final, example, cache_dir)
    if device != "cpu":  # not cached: the latency cache is keyed by the CPU
        latency["gpu"] = {"hardware": devices.describe(device)["gpu"], **{
            f"b{b}": evaluate.latency(model, final, example, b, reps)
            for b, reps in LATENCY_REPEATS.items()}}
    explained = (transparency.stage(
        model, final, test.x, test.y, info.n_classes, info.multi_label, cell.seed,
        cache_dir / "transparency" / devices.cache_name(
            f"{cell.baseline.hash}-v{transparency.STAGE_VERSION}", device),
        transparency.showcase(cell.seed, cell.sparsity, cell.scope, cell.recovery))
        if cell.transparency else None)
    return {
        "dense": base_meta["test"],
        "pruned": after_prune,
        "recovered": after_recovery,
        "chance": evaluate.chance(info.task, info.n_classes),
        "collapsed": evaluate.collapsed(after_recovery, info.task, info.n_classes),
        "params_dense": dense_cost["params"],
        "params": pruned_cost["params"],
        "macs_dense": dense_cost["macs"],
        "macs": pruned_cost["macs"],
        "compression": dense_cost["params"] / pruned_cost["params"],
        "mac_reduction": dense_cost["macs"] / pruned_cost["macs"],
        "achieved_sparsity": pruned.achieved_sparsity,
        "tie_share": pruned.tie_share,
        "latency": latency,
        "transparency": explained,
        "score_seconds": scored["seconds"],
        "prune_seconds": pruned.seconds,
        "recover_seconds": recover_seconds,
    }


def cpu_latency(model: torch.nn.Module, final: torch.nn.Module, example: torch.Tensor,
                cache_dir: Path) -> dict[str, Any]:
    """Interleaved CPU latency of the dense and pruned model, cached per architecture pair
    (``evaluate.cached_latency``); a GPU cell's models are timed as CPU copies."""
    if example.device.type != "cpu":
        model, final = (copy.deepcopy(m).cpu() for m in (model, final))
        example = example.cpu()
    return {"hardware": evaluate.hardware(), "threads": evaluate.LATENCY_THREADS,
            **{f"b{b}": evaluate.cached_latency(model, final, example, b, reps, cache_dir)
               for b, reps in LATENCY_REPEATS.items()}}


def execute(kind: str, payload: dict[str, Any], cache_dir: Path,
            device: str = "cpu") -> dict[str, Any]:
    """Run one task in this process on ``device`` (``cpu`` or ``cuda``); never raises (errors
    are returned as one line)."""
    start = time.perf_counter()
    try:
        determinism = devices.configure(device)
        if kind == "baseline":
            key = BaselineKey(**payload)
            _, meta = baseline.get(key, data.load(key.dataset, key.size), cache_dir, device)
            result: dict[str, Any] = {"test": meta["test"]}
        elif kind == "scores":
            key = ScoreKey(BaselineKey(**payload["baseline"]), **{
                k: v for k, v in payload.items() if k != "baseline"})
            dataset = data.load(key.baseline.dataset, key.baseline.size)
            model, _ = baseline.get(key.baseline, dataset, cache_dir, device)
            result = {"seconds": scoring.get(key, model, dataset, cache_dir, device)["seconds"]}
        elif kind == "soundness":
            result = {"verdict": soundness.verdict(payload["method"], payload["granularity"],
                                                   cache_dir)}
        else:
            cell = Cell.from_dict(payload)
            result = {"metrics": run_cell(cell, cache_dir, device)}
        return {"ok": True, "seconds": time.perf_counter() - start,
                "threads": torch.get_num_threads(), "device": devices.describe(device),
                "determinism": determinism, **result}
    except Exception as exc:  # a failing cell must not take the matrix down
        return {"ok": False, "seconds": time.perf_counter() - start, "error": one_line(exc)}


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, XPruneError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def make_record(cell: Cell, outcome: dict[str, Any]) -> dict[str, Any]:
    """Assemble a schema-valid record from a cell and its task outcome (ok or failed)."""
    info = data.info(cell.dataset)
    try:
        method = plugins.get(cell.method).metadata()
        method.pop("granularities")
    except XPruneError:
        method = {k: "" for k in ("family", "description", "reference", "source")}
        method |= {"name": cell.method, "version": cell.method_version}
    method["soundness"] = outcome.get("soundness") or "not checked"
    method["architectures"] = method.get("architectures", "any")
    run_on = outcome.get("device") or {"kind": "cpu", "gpu": None}
    return {
        "schema_version": SCHEMA_VERSION,
        "cell_hash": cell.hash,
        "status": "ok" if outcome["ok"] else "failed",
        "error": None if outcome["ok"] else outcome["error"],
        "cell": cell.__dict__.copy(),
        "method": method,
        "dataset": {"flag": info.flag, "task": info.task, "n_classes": info.n_classes,
                    "synthetic": info.synthetic, "md5": _md5(cell)},
        "metrics": outcome.get("metrics") if outcome["ok"] else None,
        "provenance": provenance() | {
            "device": run_on,
            "determinism": outcome.get("determinism") or provenance()["determinism"],
            "torch_threads": outcome.get("threads", torch.get_num_threads()),
            "baseline_hash": cell.baseline.hash, "score_hash": cell.scores.hash,
            "seconds": round(outcome.get("seconds", 0.0), 3),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    }


def _md5(cell: Cell) -> str | None:
    return None if cell.dataset == data.SYNTHETIC else data.expected_md5(cell.dataset, cell.size)


@functools.lru_cache(maxsize=1)
def provenance() -> dict[str, Any]:
    """Code and library versions, git commit, and the CPU/thread setting results came from."""
    names = ["torch", "torchvision", "torch-pruning", "zennit", "captum", "medmnist", "numpy",
             "torchmetrics"]
    versions = {n: _version(n) for n in names} | {"python": platform.python_version()}
    determinism = {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                   "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
                   "device": "cpu"}
    return {"xprune_version": __version__, "git_commit": git_commit(), "versions": versions,
            "cuda": torch.version.cuda or "none", "determinism": determinism,
            "machine": platform.machine()}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def git_commit() -> str:
    """HEAD of the repository the engine runs from, '+dirty' if it has local changes."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
