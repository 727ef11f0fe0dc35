"""Baselines: one trained model per (dataset, size, backbone, seed, epochs, min_steps) and
training recipe, cached by hash; each entry carries its weight :func:`digest`, and the cache
travels as one archive with a manifest of digests (:func:`export`, :func:`import_archive`)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.compute import cache, models
from bench.compute.data import Dataset
from bench.compute.evaluate import task_scores
from bench.compute.train import BASELINE_LR, fit
from bench.core import paths
from bench.core.errors import XPruneError, one_line
from bench.core.spec import BASELINE_RECIPE, PROTOCOL, BaselineKey


def digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict, canonically: for each key in sorted order, the key, dtype,
    shape and the tensor's contiguous CPU bytes (little-endian, as x86-64 stores them).
    Two baselines with this digest equal hold the same bits."""
    h = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{str(tensor.dtype).removeprefix('torch.')}|"
                 f"{','.join(map(str, tensor.shape))}\n".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def train(key: BaselineKey, dataset: Dataset, device: str = "cpu") -> dict[str, Any]:
    """Train from scratch on ``device`` and return the cache entry: weights plus metadata."""
    start = time.perf_counter()
    torch.manual_seed(key.seed)  # initial weights too: every process starts unseeded
    model = models.build(key.backbone, dataset.info.n_channels, dataset.info.n_classes)
    if device != "cpu":
        model = model.to(device)  # built on the CPU first: the same initial weights
    model, history = fit(model, dataset, key.epochs, BASELINE_LR, key.seed, key.min_steps)
    state = model.state_dict()
    state = state if device == "cpu" else {k: v.cpu() for k, v in state.items()}
    return {
        "key": key.__dict__ | {"hash": key.hash},
        "recipe": BASELINE_RECIPE,
        "steps": history[-1]["step"],
        "state_dict": state,
        "digest": digest(state),
        "history": history,
        "val": task_scores(model, dataset.val, dataset.info.task),
        "test": task_scores(model, dataset.test, dataset.info.task),
        "seconds": time.perf_counter() - start,
    }


def get(key: BaselineKey, dataset: Dataset, cache_dir: Path,
        device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The trained baseline on ``device`` (trained first if not cached) and its metadata;
    ``digest`` is always that of the weights loaded (an entry from before digests gets one)."""
    entry = cache.get_or_compute(paths.baseline(key, cache_dir, device),
                                 lambda: train(key, dataset, device))
    model = models.build(key.backbone, dataset.info.n_channels, dataset.info.n_classes)
    model.load_state_dict(entry["state_dict"])
    if device != "cpu":
        model = model.to(device)
    meta = {k: v for k, v in entry.items() if k != "state_dict"}
    return model.eval(), meta | {"digest": digest(entry["state_dict"])}


ARCHIVE_FORMAT = "xprune-baselines/1"
_ENTRY_NAME = re.compile(r"^[0-9a-f]{16}(\.[a-z]+)?\.pt$")


class ArchiveError(XPruneError):
    """A baselines archive cannot be written, or is not one this engine wrote, intact."""


def export(cache_dir: Path, archive: Path) -> dict[str, Any]:
    """Write every baseline of ``cache_dir`` into ``archive`` (a .tar.gz): the entries as they
    are, and ``manifest.json`` naming each one's file sha256 and weight digest. Returns the
    manifest."""
    folder = Path(cache_dir) / "baselines"
    files = sorted(p for p in folder.glob("*.pt") if _ENTRY_NAME.match(p.name)) \
        if folder.is_dir() else []
    if not files:
        raise ArchiveError(f"{folder} holds no baselines to export")
    entries = []
    for file in files:
        blob = file.read_bytes()
        entry = _load_bytes(blob, str(file))
        entries.append({"file": file.name, "sha256": hashlib.sha256(blob).hexdigest(),
                        "digest": digest(entry["state_dict"]), "key": entry.get("key"),
                        "test": entry.get("test")})
    manifest = {"format": ARCHIVE_FORMAT, "protocol": PROTOCOL, "entries": entries}
    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=archive.parent, prefix=".tmp-", suffix=".tar.gz")
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            _add(tar, "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
            for file in files:
                _add(tar, f"baselines/{file.name}", file.read_bytes())
        os.replace(tmp, archive)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return manifest


def import_archive(archive: Path, cache_dir: Path) -> dict[str, int]:
    """Check every entry of ``archive`` against its manifest (file sha256, weight digest, the
    key hash its name says), and only then copy them all into ``cache_dir``. Entries are
    loaded as weights only (no pickled code runs). Returns counts: added, identical,
    replaced (a local entry with other weights)."""
    members = _read_archive(Path(archive))
    try:
        manifest = json.loads(members.pop("manifest.json"))
    except (KeyError, UnicodeDecodeError, json.JSONDecodeError):
        raise ArchiveError(f"{archive}: no readable manifest.json; not a baselines archive") \
            from None
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"{archive}: manifest format is not {ARCHIVE_FORMAT}")
    if manifest.get("protocol") != PROTOCOL:
        raise ArchiveError(f"{archive}: baselines of protocol {manifest.get('protocol')}, this "
                           f"engine is protocol {PROTOCOL}")
    listed = {e.get("file"): e for e in manifest.get("entries") or [] if isinstance(e, dict)}
    files = {name.removeprefix("baselines/"): blob for name, blob in members.items()}
    if set(files) != set(listed) or not listed:
        extra = sorted(set(files) ^ set(listed)) or ["(empty)"]
        raise ArchiveError(f"{archive}: files and manifest disagree ({', '.join(extra)})")
    for name, blob in sorted(files.items()):
        expected = listed[name]
        if not _ENTRY_NAME.match(name):
            raise ArchiveError(f"{archive}: {name} is not a baseline entry name")
        if hashlib.sha256(blob).hexdigest() != expected.get("sha256"):
            raise ArchiveError(f"{archive}: {name} does not match its manifest sha256 "
                               "(corrupted or altered)")
        entry = _load_bytes(blob, f"{archive}:{name}", weights_only=True)
        weights = digest(entry["state_dict"])
        if weights != expected.get("digest") or entry.get("digest", weights) != weights:
            raise ArchiveError(f"{archive}: {name} weights do not match their manifest digest")
        if (entry.get("key") or {}).get("hash") != name.split(".")[0]:
            raise ArchiveError(f"{archive}: {name} holds another baseline's key")
    counts = {"added": 0, "identical": 0, "replaced": 0}
    folder = Path(cache_dir) / "baselines"
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in sorted(files.items()):
        target = folder / name
        if target.is_file():
            try:
                same = digest(cache.load(target)["state_dict"]) == listed[name]["digest"]
            except (cache.CorruptEntry, KeyError):
                same = False
            if same:
                counts["identical"] += 1
                continue
            counts["replaced"] += 1
        else:
            counts["added"] += 1
        _write_atomic(target, blob)
    return counts


def _add(tar: tarfile.TarFile, name: str, blob: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(blob), 0o644
    tar.addfile(info, io.BytesIO(blob))


def _read_archive(archive: Path) -> dict[str, bytes]:
    """Every regular file of a tar archive by name, read into memory (nothing is extracted)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            out = {}
            for member in tar.getmembers():
                if not member.isfile():
                    raise ArchiveError(f"{archive}: {member.name} is not a plain file")
                if member.name != "manifest.json" and not member.name.startswith("baselines/"):
                    raise ArchiveError(f"{archive}: unexpected member {member.name}")
                out[member.name] = tar.extractfile(member).read()
            return out
    except FileNotFoundError:
        raise ArchiveError(f"{archive}: no such file") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{archive}: not a readable archive ({one_line(exc)})") from None


def _load_bytes(blob: bytes, where: str, weights_only: bool = False) -> dict[str, Any]:
    try:
        entry = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # noqa: BLE001 (zip, unpickling, weights-only refusals)
        raise ArchiveError(f"{where}: not a readable baseline entry ({one_line(exc)})") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("state_dict"), dict):
        raise ArchiveError(f"{where}: not a baseline entry (no state_dict)")
    return entry


def _write_atomic(path: Path, blob: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="tmp-", suffix=".partial")
    with os.fdopen(fd, "wb") as fh:
        fh.write(blob)
    os.replace(tmp, path)
