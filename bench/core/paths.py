"""Every cache path in one place, torch-free: the coordinator plans with the very paths the
workers write (a baseline, a method's scores, a soundness verdict, dense reference maps,
a latency measurement), so no module re-derives a layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.core.spec import PROTOCOL, BaselineKey


def cache_name(key_hash: str, device: str) -> str:
    """A cache file name: ``<hash>.pt`` on the CPU (as always), ``<hash>.cuda.pt`` on a GPU."""
    return f"{key_hash}.pt" if device == "cpu" else f"{key_hash}.{device}.pt"


def baseline(key: BaselineKey, cache: Path, device: str = "cpu") -> Path:
    """A trained baseline's weights and metadata (``bench.compute.baseline``)."""
    return cache / "baselines" / cache_name(key.hash, device)


def scores(key: Any, cache: Path, device: str = "cpu") -> Path:
    """A method's scores for one baseline and granularity (a ``ScoreKey``)."""
    return cache / "scores" / cache_name(key.hash, device)


def soundness(method: str, version: str, granularity: str, cache: Path) -> Path:
    """A method's soundness verdict at one granularity (``bench.compute.soundness``)."""
    return cache / "soundness" / f"{method}-v{version}-{granularity}-p{PROTOCOL}.pt"


def transparency(baseline_hash: str, stage_version: int, cache: Path, device: str = "cpu") -> Path:
    """A baseline's dense reference maps and probe (``bench.compute.transparency``)."""
    return cache / "transparency" / cache_name(f"{baseline_hash}-v{stage_version}", device)


def latency(key: str, cache: Path) -> Path:
    """A measured dense-vs-pruned latency, keyed by both architectures and the hardware."""
    return cache / "latency" / f"{key}.pt"
