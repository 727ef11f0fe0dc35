"""Parsing and checking ``xprune`` option values before anything is written: comma lists,
folder names the file system can hold, writable folders, and shell completion."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from bench import plugins
from bench.compute import data
from bench.core import backbones
from bench.core import spec as specs
from bench.core.errors import SpecError

NAME_MAX = 255


def _complete(known: list[str], incomplete: str) -> list[str]:
    """Complete the last item of a comma-separated list."""
    head, _, last = incomplete.rpartition(",")
    prefix = f"{head}," if head else ""
    return [prefix + n for n in known if n.startswith(last)]


def _complete_methods(incomplete: str) -> list[str]:
    return _complete(list(plugins.declarations().methods), incomplete)


def _complete_datasets(incomplete: str) -> list[str]:
    return _complete(data.names(), incomplete)


def _complete_backbones(incomplete: str) -> list[str]:
    return _complete(backbones.names(), incomplete)


def _complete_presets(incomplete: str) -> list[str]:
    return _complete(specs.preset_names(), incomplete)


def _csv(value: Optional[str], what: str) -> Optional[list[str]]:
    """A comma-separated option: None when absent; an empty one is a mistake, not 'all'."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise SpecError(f"--{what} is empty (leave the option out to keep the spec's {what})")
    return items


def _floats(value: Optional[str], what: str) -> Optional[list[float]]:
    items = _csv(value, what)
    try:
        return [float(v) for v in items] if items else None
    except ValueError:
        raise SpecError(f"--{what}: {value!r} is not a comma-separated list of numbers") from None


def _ints(value: Optional[str], what: str) -> Optional[list[int]]:
    items = _csv(value, what)
    try:
        return [int(v) for v in items] if items else None
    except ValueError:
        raise SpecError(f"--{what}: {value!r} is not a comma-separated list of integers") from None


def _path(value: Optional[str], option: str) -> Optional[Path]:
    """A path option: None when absent; an empty one is refused (``Path("")`` is the current
    folder, so ``--out ""`` would write into it)."""
    if value is None:
        return None
    if not value.strip() or "\0" in value:
        raise SpecError(f"{option} {value!r} is not a path (leave the option out for the default)")
    return Path(value)


def _check_folder_name(folder: Path, what: str) -> None:
    """Refuse a path the file system cannot hold, or a file where a folder must be."""
    for part in folder.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise SpecError(f"{what} name {part[:24]}… is too long ({len(os.fsencode(part))} "
                            f"bytes; at most {NAME_MAX} per folder name)")
    if folder.exists() and not folder.is_dir():
        raise SpecError(f"{what} {folder} is a file, not a folder")
