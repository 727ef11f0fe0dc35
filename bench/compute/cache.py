"""Content-addressed on-disk cache for baselines and scores, safe across processes.

An entry is computed once under an exclusive file lock and written atomically; every later
request (from any process) loads it. An entry that cannot be loaded (truncated, zero bytes,
not a torch file, not the dict the engine wrote) is never trusted and never fatal: it is
logged as a warning, discarded and recomputed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from bench.core.errors import one_line

log = logging.getLogger(__name__)


class CorruptEntry(Exception):
    """A cache file exists but does not hold a readable entry."""


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
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="tmp-", suffix=".partial")
    os.close(fd)
    try:
        torch.save(value, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: Path) -> Any:
    """Load one entry; :class:`CorruptEntry` if the file is not a readable entry."""
    import torch

    try:
        value = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise
    except Exception as exc:  # EOFError, RuntimeError (zip), UnpicklingError, ...
        raise CorruptEntry(one_line(exc, typed=True)) from None
    if not isinstance(value, dict):
        raise CorruptEntry(f"holds a {type(value).__name__}, not an entry")
    return value


def _try_load(path: Path) -> tuple[bool, Any]:
    """(True, value) for a readable entry; (False, None) when absent or discarded as corrupt."""
    try:
        return True, load(path)
    except FileNotFoundError:
        return False, None
    except CorruptEntry as exc:
        log.warning("discarding unreadable cache entry %s (%s); recomputing it", path, exc)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return False, None


def get_or_compute(path: Path, compute: Callable[[], Any]) -> Any:
    """Load ``path`` if readable, else compute, store and return (one computer at a time)."""
    try:
        return load(path)
    except (FileNotFoundError, CorruptEntry):
        pass  # a corrupt entry is discarded under the lock, where no one else replaces it
    with _locked(path):
        if path.is_file():
            found, value = _try_load(path)
            if found:
                return value
        value = compute()
        save(path, value)
        return value
