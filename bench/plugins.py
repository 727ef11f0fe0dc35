"""Method discovery: the repository's ``methods/`` folder by path, extra paths from
``$XPRUNE_PLUGIN_PATH``, and installed packages through the ``xprune.methods`` entry points,
all behind one registry.

A plugin file that fails to import does not break the others: it is listed as broken with
its error, skipped by wildcards, and refused with that error when named explicitly.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .api import GRANULARITIES, Method
from .errors import PluginError
from .registry import Registry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "xprune.methods"
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "methods"
REQUIRED = ("name", "family", "description", "reference", "version")


@dataclass(frozen=True)
class MethodEntry:
    """A discovered plugin class and where it came from (recorded on every record)."""

    cls: type[Method]
    source: str

    @property
    def name(self) -> str:
        return self.cls.name

    def metadata(self) -> dict[str, str]:
        c = self.cls
        return {"name": c.name, "family": c.family, "description": c.description,
                "reference": c.reference, "version": str(c.version), "source": self.source,
                "granularities": ",".join(c.granularities)}


@dataclass
class Catalogue:
    methods: Registry[MethodEntry]
    broken: dict[str, str]  # source -> one-line load error

    def get(self, name: str) -> MethodEntry:
        for source, error in self.broken.items():
            if Path(source.split(":", 1)[-1]).stem == name or source.endswith(f":{name}"):
                raise PluginError(f"method plugin {source} failed to load: {error}")
        return self.methods.get(name)

    def expand(self, patterns: list[str]) -> list[str]:
        names = []
        for pattern in patterns:
            if any(c in pattern for c in "*?["):
                names += self.methods.expand([pattern])
            else:
                names.append(self.get(pattern).name)
        return list(dict.fromkeys(names))


def metadata_problems(cls: type) -> list[str]:
    """What is missing or wrong in a plugin class's declarations (empty list = fine)."""
    problems = [f"{attr} is empty" for attr in REQUIRED if not str(getattr(cls, attr, "")).strip()]
    grans = getattr(cls, "granularities", ())
    if not grans or not set(grans) <= set(GRANULARITIES):
        problems.append(f"granularities {tuple(grans)!r} must be a non-empty subset of {GRANULARITIES}")
    if not callable(getattr(cls, "score", None)) or cls.score is Method.score:
        problems.append("score() is not implemented")
    return problems


def _classes_in(module) -> list[type[Method]]:
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, Method) and obj is not Method and obj.__module__ == module.__name__
            and obj.name]


def load_file(path: Path) -> list[type[Method]]:
    """Import one plugin file by path and return the Method subclasses it defines."""
    module_name = f"xprune_methods.{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise PluginError(f"{path.name}: import failed: {type(exc).__name__}: {exc}") from None
    return _classes_in(module)


def _plugin_files() -> list[tuple[Path, str]]:
    files = [(p, f"methods/{p.name}") for p in sorted(BUILTIN_DIR.glob("*.py"))
             if not p.name.startswith("_")]
    for entry in filter(None, os.environ.get("XPRUNE_PLUGIN_PATH", "").split(os.pathsep)):
        path = Path(entry).resolve()
        found = sorted(path.glob("*.py")) if path.is_dir() else [path]
        files += [(p, f"path:{p}") for p in found if not p.name.startswith("_")]
    return files


def _entry_point_classes() -> list[tuple[type, str]]:
    out = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = f"{ep.dist.name}=={ep.dist.version}" if ep.dist else "unknown"
        source = f"entry-point:{dist}:{ep.name}"
        try:
            out.append((ep.load(), source))
        except Exception as exc:
            out.append((PluginError(f"{type(exc).__name__}: {exc}"), source))
    return out


@functools.lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """Discover every plugin once per process."""
    methods: Registry[MethodEntry] = Registry("method")
    broken: dict[str, str] = {}
    found: list[tuple[type | Exception, str]] = []
    for path, source in _plugin_files():
        try:
            found += [(cls, source) for cls in load_file(path)]
        except PluginError as exc:
            broken[source] = str(exc)
    found += _entry_point_classes()
    for cls, source in found:
        if isinstance(cls, Exception):
            broken[source] = str(cls)
            continue
        problems = metadata_problems(cls) if isinstance(cls, type) else ["not a class"]
        if problems:
            broken[source] = f"{getattr(cls, 'name', cls)!s}: {'; '.join(problems)}"
            continue
        try:
            methods.add(cls.name, MethodEntry(cls, source))
        except Exception as exc:
            broken[source] = str(exc)
    for source, error in broken.items():
        log.warning("method plugin %s is broken: %s", source, error)
    return Catalogue(methods, broken)


def get(name: str) -> MethodEntry:
    """Look up one plugin by name (PluginError if it is broken, UnknownNameError if absent)."""
    return catalogue().get(name)
