"""An output folder's own bookkeeping: the lock that admits one ``xprune run`` at a time, and
the tracking journal that lets a finished matrix re-run without opening MLflow.

Both live in ``<out>/.xprune/`` (never in ``records/``, which publish reads).

- The lock is ``fcntl.flock`` on ``.xprune/lock``; the holder writes its pid, host, start
  time and command line into the file, so a second run can say who holds it. The kernel
  releases the lock when the holder dies, however it dies.
- The journal (one file per tracking store and experiment) is append-only: ``cell <hash>``,
  ``baseline <hash>``, ``parent-open <run id>``, ``parent-closed <run id>``. A re-run whose
  every record is journalled, with no parent left open, needs nothing from MLflow.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import IO, Iterable

from bench.core.errors import XPruneError


class FolderBusy(XPruneError):
    """Another ``xprune run`` holds the output folder."""


def state_dir(out: Path) -> Path:
    return Path(out) / ".xprune"


class OutputLock:
    """An exclusive, non-blocking lock on an output folder (context manager)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.path = state_dir(out) / "lock"
        self._fh: IO[str] | None = None

    def __enter__(self) -> "OutputLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = _describe(fh.read())
            fh.close()
            raise FolderBusy(f"output folder {self.out} is in use by another xprune run "
                             f"({holder}); wait for it to finish or use another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(["xprune", *sys.argv[1:]])}))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.seek(0)
            self._fh.truncate()
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
        return (f"pid {info['pid']} on {info['host']}, started {info['started']}: "
                f"{info['command']}")
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


def _store_key(uri: str) -> str:
    """A tracking URI with a relative SQLite path made absolute (it names a file here)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


class Journal:
    """What this output folder has logged to one tracking store and experiment."""

    def __init__(self, out: Path, uri: str, experiment: str) -> None:
        self.store = _store_key(uri)
        digest = hashlib.sha256(f"{self.store}\n{experiment}".encode()).hexdigest()[:16]
        self.path = state_dir(out) / f"tracked-{digest}.log"

    def _entries(self) -> list[tuple[str, str]]:
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return []
        return [tuple(line.split(" ", 1)) for line in lines if " " in line]  # type: ignore[misc]

    def add(self, kind: str, value: str) -> None:
        """Append one entry (called right after MLflow accepted the write)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(f"{kind} {value}\n")

    def covers(self, cell_hashes: Iterable[str]) -> bool:
        """True when every given cell is journalled as logged, no parent run is left open,
        and a SQLite store's file still exists: then MLflow has nothing to catch up on."""
        if self.store.startswith("sqlite:///") and not Path(self.store[10:]).is_file():
            return False
        cells, open_parents = set(), set()
        for kind, value in self._entries():
            if kind == "cell":
                cells.add(value)
            elif kind == "parent-open":
                open_parents.add(value)
            elif kind == "parent-closed":
                open_parents.discard(value)
        return not open_parents and set(cell_hashes) <= cells


def make_writable(folder: Path, what: str) -> None:
    """Create ``folder`` and prove a file can be written in it (else one XPruneError line)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise XPruneError(f"{what} {folder} is not writable ({exc.strerror})") from None
