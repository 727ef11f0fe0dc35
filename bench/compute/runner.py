"""One benchmark cell, top to bottom, and what a worker runs for any task.

    load data -> baseline (cached) -> scores (cached) -> prune -> recover -> measure

Each step is one call into the module that owns it. ``execute`` runs one task (a
``bench.core.tasks`` value) in this process, dispatching on its type; exceptions become one-line
failed outcomes. Records are assembled by the coordinator (``bench.results.records.make_record``).
"""

from __future__ import annotations

import copy
import functools
import time
from pathlib import Path
from typing import Any

import torch

from bench.compute import (
    baseline,
    data,
    evaluate,
    kernels,
    prune,
    recover,
    scoring,
    soundness,
    transparency,
)
from bench.compute import (
    device as devices,
)
from bench.core import paths
from bench.core.axes import RecoveryKind
from bench.core.errors import one_line
from bench.core.spec import Cell
from bench.core.tasks import ComputeScores, JudgeSoundness, Outcome, RunCell, Task, TrainBaseline

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
    after_recovery = (after_prune if cell.recovery.kind is RecoveryKind.NONE  # same model
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
        paths.transparency(cell.baseline.hash, transparency.STAGE_VERSION, cache_dir, device),
        transparency.showcase(cell.seed, cell.sparsity, cell.scope, cell.recovery,
                              transparency.has_batchnorm(model)))
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
        # provenance, moved there by records.make_record: what computed this cell
        "baseline_digest": base_meta["digest"],
        "kernels": kernels.settings(),
        # provenance.scoring, moved there by records.make_record
        "scoring_isolation": scored.get("isolation", "in-process (scores cached before "
                                                     "scoring processes)"),
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


@functools.singledispatch
def perform(task: Task, cache_dir: Path, device: str) -> Any:
    """Compute one task in this process on ``device``; return its type's result."""
    raise TypeError(f"not a task: {type(task).__name__}")


@perform.register(TrainBaseline)
def _train(task: TrainBaseline, cache_dir: Path, device: str) -> dict[str, Any]:
    key = task.key
    _, meta = baseline.get(key, data.load(key.dataset, key.size), cache_dir, device)
    return meta["test"]


@perform.register(JudgeSoundness)
def _judge(task: JudgeSoundness, cache_dir: Path, device: str) -> str:
    return soundness.verdict(task.method, task.granularity, cache_dir, task.timeout)


@perform.register(ComputeScores)
def _score(task: ComputeScores, cache_dir: Path, device: str) -> float:
    key = task.key
    dataset = data.load(key.baseline.dataset, key.baseline.size)
    model, _ = baseline.get(key.baseline, dataset, cache_dir, device)
    return scoring.get(key, model, dataset, cache_dir, device, task.timeout)["seconds"]


@perform.register(RunCell)
def _run(task: RunCell, cache_dir: Path, device: str) -> dict[str, Any]:
    return run_cell(task.cell, cache_dir, device)


def execute(task: Task, cache_dir: Path, device: str = "cpu") -> Outcome:
    """Run one task in this process on ``device`` (``cpu`` or ``cuda``); never raises (errors
    are returned as one line)."""
    start = time.perf_counter()
    try:
        determinism = devices.configure(device)
        result = perform(task, cache_dir, device)
        return Outcome(True, time.perf_counter() - start, threads=torch.get_num_threads(),
                       device=devices.describe(device), determinism=determinism, result=result)
    except Exception as exc:  # a failing cell must not take the matrix down
        return Outcome.failure(one_line(exc), time.perf_counter() - start)
