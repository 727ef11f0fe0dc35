"""Publishing: copy a run's ok records into ``reports/`` after checking them.

Layout: ``reports/<dataset>/<backbone>/<method>/<cell_hash>.json`` (sorted keys, indent 2),
so adding a result is a one-file diff. Publishing the same record again is a no-op; a
different record under an existing cell hash is a conflict, refused unless ``force``.
A record of a newer engine protocol *retires* the published records of an older protocol with
the same setting and method (dataset, size, backbone, granularity, scope, recovery, recipe,
reference set): they were computed on other baselines with other kernels, so the two never
share a setting; the retired files are deleted (git history keeps them) and counted.
Everything is checked before anything is written, so a refused publish changes nothing.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.compute import data
from bench.core.errors import RecordError, XPruneError
from bench.core.spec import Cell
from bench.results import records

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_PROVENANCE_STRINGS = ("xprune_version", "git_commit", "baseline_hash", "created")


@dataclass
class PublishSummary:
    """What ``publish`` did; ``str()`` is one line for the CLI."""

    reports: Path
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)
    retired: list[Path] = field(default_factory=list)
    skipped_failed: int = 0

    def __str__(self) -> str:
        forced = f", {len(self.replaced)} replaced (--force)" if self.replaced else ""
        retired = (f", {len(self.retired)} older-protocol record(s) of the same settings retired"
                   if self.retired else "")
        return (f"published to {self.reports}: {len(self.written)} written, "
                f"{len(self.unchanged)} unchanged{forced}{retired}, "
                f"{self.skipped_failed} failed record(s) skipped")


def safe_name(value: Any, what: str) -> str:
    """A record field used as a path component: letters, digits, ``._+-``, no leading dot."""
    if not isinstance(value, str) or not _SAFE.match(value):
        raise RecordError(f"{what} {value!r} cannot be a file name "
                          "(use letters, digits, '.', '_', '+', '-'; no leading dot)")
    return value


def record_path(reports: Path, record: dict[str, Any]) -> Path:
    """Where a record lives under ``reports``."""
    cell = record["cell"]
    return (Path(reports) / safe_name(cell["dataset"], "dataset")
            / safe_name(cell["backbone"], "backbone") / safe_name(cell["method"], "method")
            / f"{record['cell_hash']}.json")


def check_publishable(record: dict[str, Any], where: str) -> None:
    """Provenance present and the cell hash matches the cell (the config hash)."""
    prov = record["provenance"]
    for key in _PROVENANCE_STRINGS:
        if not isinstance(prov.get(key), str) or not prov[key].strip():
            raise RecordError(f"{where}: provenance.{key} is missing or empty")
    versions = prov.get("versions")
    if not isinstance(versions, dict) or not versions:
        raise RecordError(f"{where}: provenance.versions (library versions) is missing or empty")
    expected = Cell.from_dict(record["cell"]).hash
    if record["cell_hash"] != expected:
        raise RecordError(f"{where}: cell_hash {record['cell_hash']} does not match its cell "
                          f"({expected}); the record was edited or comes from another protocol")
    if record["method"]["name"] != record["cell"]["method"]:
        raise RecordError(f"{where}: method.name {record['method']['name']!r} differs from "
                          f"cell.method {record['cell']['method']!r}")


def check_dataset(record: dict[str, Any], where: str) -> None:
    """The record's dataset block agrees with the dataset registry: flag, task, classes, the
    synthetic label and the official file's md5 (fields outside the cell hash, so an edit
    would otherwise pass; synthetic data must never be published as real)."""
    block, cell = record["dataset"], record["cell"]
    if block["flag"] != cell["dataset"]:
        raise RecordError(f"{where}: dataset.flag {block['flag']!r} differs from cell.dataset "
                          f"{cell['dataset']!r}")
    try:
        info = data.info(cell["dataset"])
    except XPruneError as exc:
        raise RecordError(f"{where}: {exc}") from None
    if block["synthetic"] is not info.synthetic:
        kind = "synthetic" if info.synthetic else "real"
        raise RecordError(f"{where}: dataset.synthetic is {block['synthetic']!r} but "
                          f"{info.flag} is {kind} data; refusing to publish it as "
                          f"{'real' if info.synthetic else 'synthetic'}")
    if (block["task"], block["n_classes"]) != (info.task, info.n_classes):
        raise RecordError(f"{where}: dataset task/classes {block['task']!r}/{block['n_classes']} "
                          f"differ from {info.flag}'s {info.task!r}/{info.n_classes}")
    if not info.synthetic:
        try:
            expected = data.expected_md5(info.flag, cell["size"])
        except KeyError:
            raise RecordError(f"{where}: {info.flag} has no official file at size "
                              f"{cell['size']}") from None
        if block["md5"] != expected:
            raise RecordError(f"{where}: dataset.md5 {block['md5']!r} is not the official "
                              f"{data.file_name(info.flag, cell['size'])} ({expected})")


def _load_run(run_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """The ok records under ``run_dir/records/`` (else ``run_dir``) and the number of failed ones."""
    if not Path(run_dir).is_dir():
        raise RecordError(f"run directory {run_dir} does not exist")
    source = Path(run_dir) / "records" if (Path(run_dir) / "records").is_dir() else Path(run_dir)
    found: dict[str, dict[str, Any]] = {}
    failed = 0
    for path in sorted(source.rglob("*.json")):
        if path.name.startswith(".tmp-"):
            continue
        record = records.read(path)
        if record["status"] != "ok":
            failed += 1
            continue
        check_publishable(record, str(path))
        check_dataset(record, str(path))
        record_path(Path("."), record)  # names must be path-safe before anything is written
        other = found.setdefault(record["cell_hash"], record)
        if other != record:
            raise RecordError(f"{path}: two different records for cell {record['cell_hash']} "
                              "in the same run")
    if not found and not failed:
        raise RecordError(f"{run_dir} holds no records (*.json)")
    return [found[h] for h in sorted(found)], failed


def _setting_method(record: dict[str, Any]) -> tuple:
    """What must match for an older-protocol record to be retired by ``record``: every cell
    coordinate but sparsity, seed and the method's version."""
    return tuple(sorted((k, v) for k, v in record["cell"].items()
                        if k not in ("sparsity", "seed", "method_version", "transparency")))


def _retired(reports: Path, ok: list[dict[str, Any]]) -> list[Path]:
    """Published records of an older protocol in the setting and method of a new record."""
    newest: dict[tuple, int] = {}
    for record in ok:
        key = _setting_method(record)
        newest[key] = max(newest.get(key, 0), records.protocol(record))
    folders = {(r["cell"]["dataset"], r["cell"]["backbone"], r["cell"]["method"]) for r in ok}
    out = []
    for dataset, backbone, method in sorted(folders):
        folder = Path(reports) / dataset / backbone / method
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            old = _existing(path)
            if not old or "cell" not in old or "schema_version" not in old:
                continue
            key = _setting_method(old)
            if key in newest and records.protocol(old) < newest[key]:
                out.append(path)
    return out


def _existing(path: Path) -> dict[str, Any] | None:
    """The record already published at ``path`` (parsed, not re-validated), if any."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {"unreadable": str(path)}


def publish(run_dir: Path | str, to: Path | str = "reports", force: bool = False) -> PublishSummary:
    """Validate a run's records and write the ok ones into ``to``; see the module docstring."""
    reports = Path(to)
    ok, failed = _load_run(Path(run_dir))
    summary = PublishSummary(reports=reports, skipped_failed=failed)
    plan = []
    for record in ok:
        path = record_path(reports, record)
        existing = _existing(path)
        if existing is not None and existing != record and not force:
            raise RecordError(f"conflict: {path} already holds a different record for cell "
                              f"{record['cell_hash']}; nothing was published (use --force to replace)")
        plan.append((path, record, existing))
    changes = []
    for path, record, existing in plan:
        if existing == record:
            summary.unchanged.append(path)
        else:
            changes.append((path, record, existing))
    retired = _retired(reports, ok)
    _apply(reports, changes, retired)
    for path, _, existing in changes:
        (summary.replaced if existing is not None else summary.written).append(path)
    summary.retired = retired
    return summary


def _apply(reports: Path, changes: list[tuple[Path, dict[str, Any], Any]],
           retired: list[Path] = ()) -> None:
    """Write every changed record and delete every retired one, or none: stage each write
    beside its target, then rename them all into place and delete the retired files last;
    any failure (permission, disk full) removes what was staged and restores what was renamed
    or deleted, so a refused publish leaves ``reports`` as it was."""
    created: list[Path] = []
    staged: list[tuple[Path, Path, bytes | None]] = []
    done: list[tuple[Path, bytes | None]] = []
    try:
        for path, record, _ in changes:
            for folder in reversed([path.parent, *path.parent.parents]):
                if not folder.exists():
                    folder.mkdir()
                    created.append(folder)
            old = path.read_bytes() if path.exists() else None
            staged.append((records.stage(path.parent, record), path, old))
        kept = [(path, path.read_bytes()) for path in retired]  # read all before any change
        for tmp, path, old in staged:
            os.replace(tmp, path)
            done.append((path, old))
        for path, old in kept:
            path.unlink()
            done.append((path, old))  # restored by writing its bytes back
    except BaseException as exc:
        for tmp, _, _ in staged:
            tmp.unlink(missing_ok=True)
        for path, old in reversed(done):
            try:
                path.unlink() if old is None else path.write_bytes(old)
            except OSError:
                pass
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError):
            where = f" ({exc.filename})" if exc.filename else ""
            raise XPruneError(f"cannot publish into {reports}: {exc.strerror}{where}; nothing "
                              "was published") from None
        raise
