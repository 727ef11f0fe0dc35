"""Method discovery: the repository's ``methods/`` folder by path, extra paths from
``$XPRUNE_PLUGIN_PATH``, and installed packages through the ``xprune.methods`` entry points,
all behind one registry.

A plugin file that fails to import does not break the others: it is listed as broken with
its error, skipped by wildcards, and refused with that error when named explicitly.

A plugin is untrusted code, and the engine's own processes never import one: listing,
planning, records and verify read :func:`declarations`, each plugin's declarations from a small
JSON cache keyed by the plugin file's path, mtime, size and inode (an entry point's
distribution version) and by the engine's own sources, refreshed for what is stale by
importing each stale plugin in its own time-bounded metadata process
(:func:`bench.compute.sandbox.read_metadata`): a plugin whose import loops, exits or fails is listed
as broken with that reason, and the others load. Scores are computed in scoring processes
(:func:`bench.compute.sandbox.score`). :func:`catalogue` imports plugins in this process; only
those child processes (and tests) call it.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from bench.core.errors import PluginError, UnknownNameError, one_line
from bench.core.method import MethodLabel
from bench.core.registry import Registry

if TYPE_CHECKING:  # bench.api imports torch: plugins are imported only when needed
    from bench.api import Method

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "xprune.methods"
# An installed wheel carries the built-ins as bench/methods/; a source checkout (editable
# install) has them in the repository's methods/ folder.
_PACKAGED = Path(__file__).resolve().parent / "methods"
BUILTIN_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parent.parent / "methods"
ENGINE_DIR = Path(__file__).resolve().parent
REQUIRED = ("name", "family", "description", "reference", "version")
META_CACHE_VERSION = 3  # 2: architectures; 3: zero_effect, source_sha256


@dataclass(frozen=True)
class MethodEntry:
    """A discovered plugin class and where it came from (recorded on every record)."""

    cls: type[Method]
    source: str

    @property
    def label(self) -> MethodLabel:
        return MethodLabel.from_class(self.cls, self.source)

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def version(self) -> str:
        return str(self.cls.version)

    @property
    def granularities(self) -> tuple[str, ...]:
        return tuple(self.cls.granularities)

    @property
    def architectures(self) -> tuple[str, ...] | None:
        return self.label.architectures


@dataclass(frozen=True)
class MethodInfo:
    """A plugin's declarations without its class: what listing and planning need."""

    label: MethodLabel

    @property
    def name(self) -> str:
        return self.label.name

    @property
    def version(self) -> str:
        return self.label.version

    @property
    def granularities(self) -> tuple[str, ...]:
        return self.label.granularities

    @property
    def architectures(self) -> tuple[str, ...] | None:
        return self.label.architectures

    @property
    def source(self) -> str:
        return self.label.source


Entry = Union[MethodEntry, MethodInfo]


@dataclass
class Catalogue:
    methods: Registry[Entry]
    broken: dict[str, str]  # source -> one-line load error

    def get(self, name: str) -> Entry:
        """A plugin by name; a broken plugin that declares (or whose file is named) ``name``
        is refused with its load error, and an unknown name mentions every broken file."""
        for source, error in self.broken.items():
            if name in _names_declared_by(source):
                raise PluginError(f"method plugin {source} failed to load: {error}")
        try:
            return self.methods.get(name)
        except UnknownNameError as exc:
            if not self.broken:
                raise
            failed = "; ".join(f"{s} failed to load: {e}" for s, e in self.broken.items())
            raise UnknownNameError(f"{exc} [{failed}]") from None

    def builtins(self) -> list[str]:
        """The names of the built-in methods (the files of ``methods/``), in registry order."""
        return [n for n in self.methods if self.methods.get(n).source.startswith("methods/")]

    def expand(self, patterns: list[str]) -> list[str]:
        """Method names and wildcards resolved; a plain name is looked up with :meth:`get`."""
        return self.methods.expand(patterns, lookup=self.get)


def _names_declared_by(source: str) -> set[str]:
    """Names a plugin source may define: its file stem (``_`` or ``-``), an entry point's
    name, and every ``name = "..."`` in its classes when the file still parses."""
    kind, _, rest = source.partition(":")
    if kind == "entry-point":
        return {rest.rsplit(":", 1)[-1]}
    path = BUILTIN_DIR / Path(source).name if kind.startswith("methods/") else Path(rest)
    names = {path.stem, path.stem.replace("_", "-")}
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError):
        return names
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
                        and isinstance(stmt.value.value, str)
                        and any(isinstance(t, ast.Name) and t.id == "name" for t in stmt.targets)):
                    names.add(stmt.value.value)
    return names


def metadata_problems(cls: type) -> list[str]:
    """What is missing or wrong in a plugin class's declarations (empty list = fine)."""
    from bench.api import GRANULARITIES, Method
    from bench.core.spec import ARCHITECTURE_GRANULARITIES

    problems = [f"{attr} is empty" for attr in REQUIRED if not str(getattr(cls, attr, "")).strip()]
    grans = getattr(cls, "granularities", ())
    if not grans or not set(grans) <= set(GRANULARITIES):
        problems.append(f"granularities {tuple(grans)!r} must be a non-empty subset of {GRANULARITIES}")
    archs = getattr(cls, "architectures", None)
    if archs is not None and (not archs or not set(archs) <= set(ARCHITECTURE_GRANULARITIES)):
        problems.append(f"architectures {archs!r} must be None or a non-empty subset of "
                        f"{tuple(ARCHITECTURE_GRANULARITIES)}")
    if not callable(getattr(cls, "score", None)) or cls.score is Method.score:
        problems.append("score() is not implemented")
    return problems


def _classes_in(module) -> list[type[Method]]:
    from bench.api import Method

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
        raise PluginError(f"{path.name}: import failed: {one_line(exc, typed=True)}") from None
    return _classes_in(module)


def _plugin_files() -> list[tuple[Path, str]]:
    files = [(p, f"methods/{p.name}") for p in sorted(BUILTIN_DIR.glob("*.py"))
             if not p.name.startswith("_")]
    for entry in filter(None, os.environ.get("XPRUNE_PLUGIN_PATH", "").split(os.pathsep)):
        path = Path(entry).resolve()
        found = sorted(path.glob("*.py")) if path.is_dir() else [path]
        files += [(p, f"path:{p}") for p in found if not p.name.startswith("_")]
    return files


def _entry_points() -> list[tuple[Any, str]]:
    out = []
    for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = f"{ep.dist.name}=={ep.dist.version}" if ep.dist else "unknown"
        out.append((ep, f"entry-point:{dist}:{ep.name}"))
    return out


def _load_entry_point(ep: Any) -> list[type[Method]]:
    try:
        return [ep.load()]
    except Exception as exc:
        raise PluginError(one_line(exc, typed=True)) from None


def _class_meta(cls: Any, source: str) -> dict[str, Any]:
    """What the catalogue needs of one loaded class: its metadata or its problems."""
    problems = metadata_problems(cls) if isinstance(cls, type) else ["not a class"]
    if problems:
        return {"name": str(getattr(cls, "name", cls)), "problems": problems}
    return {"meta": MethodLabel.from_class(cls, source).to_dict()}


def _build(found: list[tuple[str, Any, list]], broken: dict[str, str]) -> Catalogue:
    """A catalogue from (source, class or None, class meta) triples, in discovery order."""
    methods: Registry[Entry] = Registry("method")
    for source, cls, metas in found:
        for meta in metas:
            if "problems" in meta:
                broken[source] = f"{meta['name']}: {'; '.join(meta['problems'])}"
                continue
            entry = (MethodEntry(cls, source) if cls is not None
                     else MethodInfo(MethodLabel.from_dict(meta["meta"])))
            try:
                methods.add(entry.name, entry)
            except Exception as exc:
                broken[source] = str(exc)
    return Catalogue(methods, broken)


def _sources() -> list[tuple[str, Any, str]]:
    """Every plugin source: (source, path or entry point, freshness key)."""
    out = []
    for path, source in _plugin_files():
        try:
            st = path.stat()
            key = f"{path}:{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"
        except OSError:
            key = f"{path}:missing"
        out.append((source, path, key))
    out += [(source, ep, f"{source}={ep.value}") for ep, source in _entry_points()]
    return out


def _load(target: Any) -> list[type[Method]]:
    return load_file(target) if isinstance(target, Path) else _load_entry_point(target)


@functools.lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """Discover every plugin once per process, importing each here (tests only: the
    engine reads :func:`declarations` and scores in scoring processes)."""
    found, broken = [], {}
    for source, target, _key in _sources():
        try:
            classes = _load(target)
        except PluginError as exc:
            broken[source] = str(exc)
            continue
        for cls in classes:
            found.append((source, cls, [_class_meta(cls, source)]))
    return _build(found, broken)


@functools.lru_cache(maxsize=1)
def declarations() -> Catalogue:
    """Every plugin's declarations, without importing any plugin in this process.

    A stale source (no cache entry for its path, mtime, size and inode, or the engine's own
    sources changed) is imported in its own metadata process, several at once, each bounded
    by ``$XPRUNE_PLUGIN_IMPORT_TIMEOUT`` seconds; a source that fails is never cached.
    """
    from concurrent.futures import ThreadPoolExecutor

    from bench.compute.sandbox import read_metadata

    cached = _read_meta_cache()
    sources = _sources()
    stale = [(source, key) for source, _, key in sources if cached.get(key) is None]

    def read(source: str) -> list | str:
        try:
            return read_metadata(source)
        except PluginError as exc:  # named once: an import error already names its file
            name = Path(source).name if source.startswith("path:") else source
            return str(exc) if str(exc).startswith(f"{name}: ") else f"{name}: {exc}"

    if stale:
        with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
            answers = dict(zip((k for _, k in stale), pool.map(read, [s for s, _ in stale])))
    found, broken, fresh = [], {}, {}
    for source, target, key in sources:
        metas = cached.get(key) if key not in (answers if stale else {}) else answers[key]
        if isinstance(metas, str):
            broken[source] = metas
            continue
        metas = [_with_digest(m, target) for m in metas]
        fresh[key] = metas
        found.append((source, None, metas))
    if stale:
        _save_meta_cache(fresh)
    return _build(found, broken)


def _with_digest(meta: dict[str, Any], target: Any) -> dict[str, Any]:
    """A class meta with ``source_sha256``: the digest of the plugin file, read here (an
    entry point has its distribution's version in ``source`` instead)."""
    if "meta" not in meta or "source_sha256" in meta["meta"]:
        return meta
    import hashlib

    digest = ""
    if isinstance(target, Path):
        try:
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
        except OSError:
            pass
    return {**meta, "meta": {**meta["meta"], "source_sha256": digest}}


def source_digest(source: str) -> str:
    """The sha256 of a plugin source's file now ('' for an entry point or a missing file)."""
    for src, target, _ in _sources():
        if src == source:
            return _with_digest({"meta": {}}, target)["meta"]["source_sha256"]
    return ""


def meta_cache_path() -> Path:
    """``$XPRUNE_META_CACHE``, else ``$XDG_CACHE_HOME/xprune-bench/`` (``~/.cache``), one
    file per Python environment and checkout."""
    if os.environ.get("XPRUNE_META_CACHE"):
        return Path(os.environ["XPRUNE_META_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    import hashlib

    tag = hashlib.sha256(f"{sys.prefix}|{ENGINE_DIR}".encode()).hexdigest()[:12]
    return base / "xprune-bench" / f"plugins-{tag}.json"


def _engine_stamp() -> str:
    """Changes whenever a source file of the engine changes (plugins inherit from it)."""
    stats = sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size)
                   for p in ENGINE_DIR.rglob("*.py"))
    return json.dumps([META_CACHE_VERSION, sys.version, stats])


def _read_meta_cache() -> dict[str, list]:
    try:
        data = json.loads(meta_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("engine") != _engine_stamp():
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _save_meta_cache(entries: dict[str, list]) -> None:
    """Write the cache atomically; a cache that cannot be written is simply not used."""
    path = meta_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"engine": _engine_stamp(), "entries": entries})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except OSError as exc:
        log.info("plugin metadata cache %s not written: %s", path, exc)


def get(name: str) -> MethodEntry:
    """Import and look up one plugin by name in this process (PluginError if it is broken,
    UnknownNameError if absent): for the scoring and metadata processes and tests only."""
    return catalogue().get(name)


def info(name: str) -> MethodInfo:
    """One plugin's declarations by name (:func:`declarations`; nothing imported here)."""
    entry = declarations().get(name)
    assert isinstance(entry, MethodInfo)
    return entry
