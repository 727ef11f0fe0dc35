"""The on-disk cache: an entry that cannot be loaded is discarded (with a warning) and
recomputed, never trusted and never fatal (real torch files)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest
import torch

from bench.compute import cache

ENTRY = {"state_dict": {"w": torch.arange(4.0)}, "history": [{"epoch": 1, "loss": 0.5}]}


def _compute() -> dict:
    return {"state_dict": {"w": torch.ones(4)}, "history": []}


@pytest.mark.parametrize("damage", ["truncated", "zero bytes", "not torch", "not a dict"])
def test_an_unreadable_entry_is_discarded_and_recomputed(tmp_path: Path, caplog, damage: str) -> None:
    path = tmp_path / "baselines" / "0123456789abcdef.pt"
    cache.save(path, ENTRY)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "zero bytes":
        path.write_bytes(b"")
    elif damage == "not torch":
        path.write_text("hello")
    else:
        cache.save(path, [1, 2, 3])
    with caplog.at_level(logging.WARNING, logger="bench.compute.cache"):
        value = cache.get_or_compute(path, _compute)
    assert torch.equal(value["state_dict"]["w"], torch.ones(4))
    assert torch.equal(cache.load(path)["state_dict"]["w"], torch.ones(4))  # replaced on disk
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"discarding unreadable cache entry {path}"]


def test_a_readable_entry_is_loaded_not_recomputed(tmp_path: Path) -> None:
    path = tmp_path / "scores" / "0123456789abcdef.pt"
    cache.save(path, ENTRY)
    value = cache.get_or_compute(path, lambda: pytest.fail("recomputed a readable entry"))
    assert torch.equal(value["state_dict"]["w"], ENTRY["state_dict"]["w"])


def test_a_failed_save_leaves_no_partial_file(tmp_path: Path) -> None:
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        cache.save(tmp_path / "x.pt", {"f": lambda: None})  # a lambda cannot be pickled
    assert [p.name for p in tmp_path.iterdir()] == []
