"""Determinism: the same cell with the same seed, computed in two separate processes from
empty caches by the runner, gives bit-identical baseline weights, scores and metrics (the
pruned model's parameter counts, MACs and every task metric; timings left out)."""

import multiprocessing as mp
from pathlib import Path

import torch

METHODS = ("random", "taylor", "lrp-epsilon", "ig", "backtrace")


TIMINGS = ("latency", "score_seconds", "prune_seconds", "recover_seconds")


def compute(cache_dir: str) -> dict:
    """Everything one cell computes, from scratch (runs in a fresh spawned process): the
    runner's metrics (timings left out) and the baseline and scores it cached."""
    from bench import plugins
    from bench.compute import cache, runner
    from bench.core import paths
    from bench.core.spec import Cell

    torch.set_num_threads(1)
    out: dict = {}
    for method in METHODS:
        version = str(plugins.get(method).cls.version)
        for granularity in ("channel", "weight"):
            cell = Cell("synthetic", 28, "smallcnn", method, version, granularity, "layer", 0.5,
                        "bnrecal", 0, 2, 5, transparency=False)
            metrics = runner.run_cell(cell, Path(cache_dir))
            out[(method, granularity)] = {
                "baseline": cache.load(paths.baseline(cell.baseline, Path(cache_dir)))["state_dict"],
                "scores": cache.load(paths.scores(cell.scores, Path(cache_dir)))["scores"],
                "metrics": {k: v for k, v in metrics.items() if k not in TIMINGS}}
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
