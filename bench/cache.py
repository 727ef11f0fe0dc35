"""Content-addressed on-disk cache for baselines and scores, safe across processes.

An entry is computed once under an exclusive file lock and written atomically; every later
request (from any process) loads it.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def save(path: Path, value: Any) -> None:
    """``torch.save`` to a temporary file, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="tmp-", suffix=".partial")
    os.close(fd)
    torch.save(value, tmp)
    os.replace(tmp, path)


def load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=False)


def get_or_compute(path: Path, compute: Callable[[], Any]) -> Any:
    """Load ``path`` if present, else compute, store and return (one computer at a time)."""
    if path.is_file():
        return load(path)
    with _locked(path):
        if path.is_file():
            return load(path)
        value = compute()
        save(path, value)
        return value
