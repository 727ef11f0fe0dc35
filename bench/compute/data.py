"""Datasets: every MedMNIST 2D flag through the ``medmnist`` package, plus a synthetic set.

Files are read from ``$XPRUNE_DATA_ROOT`` (offline copies) or medmnist's own root
(``~/.medmnist``), md5-checked against ``medmnist.INFO`` before use, and downloaded through
medmnist when missing and the machine has internet. ``synthetic`` is generated
deterministically in memory: no download, labelled synthetic everywhere it appears.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bench.core.axes import TaskType
from bench.core.errors import DataError, one_line
from bench.core.registry import Registry
from bench.core.spec import SIZES

if TYPE_CHECKING:  # numpy, torch and medmnist are imported where they are used (fast CLI)
    import numpy as np
    from torch import Tensor

    from bench.api import Batch

SYNTHETIC = "synthetic"


@functools.cache
def _medmnist_info() -> ModuleType:
    """medmnist's ``info`` module (INFO, DEFAULT_ROOT) without importing the package, whose
    ``__init__`` imports torch and its dataset classes (seconds); the full package if loaded."""
    if "medmnist" in sys.modules:
        return sys.modules["medmnist"].info
    spec = importlib.util.find_spec("medmnist")
    info_file = Path(next(iter(spec.submodule_search_locations))) / "info.py"
    module = importlib.util.module_from_spec(
        importlib.util.spec_from_file_location("_xprune_medmnist_info", info_file))
    module.__spec__.loader.exec_module(module)
    return module


def medmnist_info() -> dict[str, dict[str, Any]]:
    """``medmnist.INFO``: every flag's metadata (task, labels, md5s, split sizes)."""
    return _medmnist_info().INFO


FLAGS_2D = tuple(flag for flag in medmnist_info() if not flag.endswith("3d"))


@dataclass(frozen=True)
class DatasetInfo:
    """What the engine needs to know about a dataset before loading it."""

    flag: str
    task: TaskType
    n_channels: int
    n_classes: int
    synthetic: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", TaskType(self.task))

    @property
    def multi_label(self) -> bool:
        return self.task is TaskType.MULTI_LABEL


@dataclass(frozen=True, eq=False)
class Split:
    """Images normalised to [-1, 1] (N, C, H, W) and labels (class ids, or 0/1 per label)."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    info: DatasetInfo
    train: Split
    val: Split
    test: Split
    md5: str | None


@functools.cache
def datasets() -> Registry[DatasetInfo]:
    """Every dataset by flag, ``synthetic`` first, then MedMNIST's 2D flags in its order."""
    registry: Registry[DatasetInfo] = Registry("dataset", ordered=True)
    registry.add(SYNTHETIC, DatasetInfo(SYNTHETIC, TaskType.MULTI_CLASS, 1, 3, synthetic=True))
    for flag in FLAGS_2D:
        meta = medmnist_info()[flag]
        registry.add(flag, DatasetInfo(flag, meta["task"], meta["n_channels"], len(meta["label"])))
    return registry


def names() -> list[str]:
    return list(datasets())


def info(flag: str) -> DatasetInfo:
    """A dataset's metadata (UnknownNameError, with close matches, for an unknown flag)."""
    return datasets().get(flag)


def data_root() -> Path:
    """``$XPRUNE_DATA_ROOT`` if set, else medmnist's default download folder."""
    env = os.environ.get("XPRUNE_DATA_ROOT")
    return Path(env).expanduser() if env else Path(_medmnist_info().DEFAULT_ROOT)


def file_name(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def expected_md5(flag: str, size: int) -> str:
    return medmnist_info()[flag]["MD5" if size == 28 else f"MD5_{size}"]


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(flag: str, size: int, root: Path) -> None:
    """Fetch the official file through medmnist (which checks its md5 on the way)."""
    import medmnist

    cls = getattr(medmnist, medmnist.INFO[flag]["python_class"])
    root.mkdir(parents=True, exist_ok=True)
    try:
        cls(split="train", root=str(root), download=True, size=size)
    except Exception as exc:  # any network/IO failure becomes one line
        raise DataError(
            f"{flag}: {file_name(flag, size)} is not in {root} and the download failed "
            f"({one_line(exc, typed=False)}); "
            "offline, set XPRUNE_DATA_ROOT to a folder holding the official .npz files"
        ) from None


def locate(flag: str, size: int = 28, download: bool = True) -> tuple[Path, str]:
    """Path and verified md5 of a MedMNIST file, downloading it if allowed and missing."""
    if size not in SIZES:
        raise DataError(f"{flag}: size {size} is not one of {SIZES}")
    root = data_root()
    path = root / file_name(flag, size)
    try:
        present = path.is_file()
    except OSError as exc:  # an unreadable data root (permission) is the user's to fix
        raise DataError(f"{flag}: data file {path} cannot be read ({exc.strerror})") from None
    if not present:
        if not download or os.environ.get("XPRUNE_OFFLINE"):
            raise DataError(f"{flag}: data file {path} not found (set XPRUNE_DATA_ROOT)")
        _download(flag, size, root)
    try:
        actual = _md5(path)
    except OSError as exc:
        raise DataError(f"{flag}: data file {path} cannot be read ({exc.strerror})") from None
    expected = expected_md5(flag, size)
    if actual != expected:
        raise DataError(
            f"{flag}: md5 mismatch for {path} (expected {expected}, got {actual}): "
            "the file is corrupt, truncated or not the official release"
        )
    return path, actual


def _to_split(images: np.ndarray, labels: np.ndarray, task: TaskType) -> Split:
    import numpy as np
    import torch

    x = torch.from_numpy(images).float().div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x = x.sub_(0.5).div_(0.5).contiguous()
    y = torch.from_numpy(labels.astype(np.int64))
    y = y.float() if task == TaskType.MULTI_LABEL else y.reshape(-1)
    return Split(x, y)


@functools.lru_cache(maxsize=4)
def load(flag: str, size: int = 28) -> Dataset:
    """Load all three splits into memory (cached per process)."""
    import numpy as np

    meta = info(flag)
    if meta.synthetic:
        return _synthetic(size)
    path, md5 = locate(flag, size)
    try:
        with np.load(path) as npz:
            splits = {s: _to_split(npz[f"{s}_images"], npz[f"{s}_labels"], meta.task)
                      for s in ("train", "val", "test")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{flag}: {path} is not a readable MedMNIST npz ({exc})") from None
    return Dataset(meta, splits["train"], splits["val"], splits["test"], md5)


def _synthetic(size: int) -> Dataset:
    """Three classes of noisy 1-channel images: a patch of horizontal stripes, of vertical
    stripes, or of a checkerboard, at a random place. Texture, not position, carries the
    class, so every backbone (global pooling included) can learn it.

    Deterministic (fixed seed): 600 train / 150 val / 300 test. Not medical data.
    """
    import numpy as np

    rng = np.random.default_rng(20241122)
    yy, xx = np.mgrid[0:size, 0:size]
    patterns = [np.sin(yy * np.pi / 2), np.sin(xx * np.pi / 2),
                np.sin(yy * np.pi / 2) * np.sin(xx * np.pi / 2) * 2]
    half = size // 4

    def make(n: int) -> Split:
        labels = rng.integers(0, 3, n)
        images = rng.normal(0.5, 0.15, (n, size, size))
        for i, label in enumerate(labels):
            cy, cx = rng.integers(half, size - half, 2)
            window = (np.abs(yy - cy) < half) & (np.abs(xx - cx) < half)
            images[i] += 0.25 * patterns[label] * window
        images = np.clip(images * 255, 0, 255).astype(np.uint8)
        return _to_split(images, labels.reshape(-1, 1).astype(np.uint8), TaskType.MULTI_CLASS)

    return Dataset(info(SYNTHETIC), make(600), make(150), make(300), None)


def reference_batch(dataset: Dataset, per_class: int, seed: int) -> Batch:
    """A fixed, seeded, class-balanced sample of training images (the same for every method).

    Up to ``per_class`` images of each class (of each positive label, for multi-label tasks).
    """
    import torch

    from bench.api import Batch

    y = dataset.train.y
    gen = torch.Generator().manual_seed(seed)
    members = (y.bool().T if dataset.info.multi_label
               else [y == k for k in range(dataset.info.n_classes)])
    picked: list[int] = []
    for mask in members:
        idx = torch.nonzero(mask).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        picked += [int(i) for i in idx if int(i) not in picked][:per_class]
    index = torch.tensor(sorted(picked), dtype=torch.long)
    return Batch(dataset.train.x[index], y[index], dataset.info.task, dataset.info.n_classes)
