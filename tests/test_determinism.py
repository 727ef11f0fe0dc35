"""Determinism: the same cell with the same seed, computed in two separate processes from
empty caches, gives bit-identical baseline weights, scores, pruned weights and metrics."""

import multiprocessing as mp
from pathlib import Path

import torch

METHODS = ("random", "taylor", "lrp-epsilon", "ig", "backtrace")


def compute(cache_dir: str) -> dict:
    """Everything one cell computes, from scratch (runs in a fresh spawned process)."""
    from bench.compute import baseline, data, evaluate, prune, recover, scoring
    from bench.core.spec import Cell

    torch.set_num_threads(1)
    dataset = data.load("synthetic")
    out: dict = {}
    for method in METHODS:
        for granularity in ("channel", "weight"):
            cell = Cell("synthetic", 28, "smallcnn", method, "1", granularity, "layer", 0.5,
                        "bnrecal", 0, 2, 5)
            model, _ = baseline.get(cell.baseline, dataset, Path(cache_dir))
            scores = scoring.get(cell.scores, model, dataset, Path(cache_dir))["scores"]
            pruned = prune.prune(model, scores, granularity, "layer", 0.5, dataset.test.x[:1])
            final, _ = recover.recover(pruned.model, "bnrecal", dataset, 0)
            final = prune.finalize(prune.Pruned(final, pruned.masks))
            out[(method, granularity)] = {
                "baseline": model.state_dict(), "scores": scores, "pruned": final.state_dict(),
                "metrics": evaluate.task_scores(final, dataset.test, dataset.info.task)}
    return out


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def test_two_processes_agree_bit_for_bit(tmp_path):
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        first = pool.apply(compute, (str(tmp_path / "a"),))
    with ctx.Pool(1) as pool:
        second = pool.apply(compute, (str(tmp_path / "b"),))
    assert first.keys() == second.keys()
    differing = [key for key in first if not same(first[key], second[key])]
    assert not differing
