"""Provenance: the code, libraries and machine a record came from.

Read by record assembly (``bench.results.records.make_record``) and MLflow tracking. Importing this
module imports neither torch nor MLflow; :func:`provenance` imports torch when first called.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import __version__

LIBRARIES = ("torch", "torchvision", "torch-pruning", "zennit", "captum", "medmnist", "numpy",
             "torchmetrics")


@functools.lru_cache(maxsize=1)
def provenance() -> dict[str, Any]:
    """Code and library versions, git commit, and the CPU/thread/kernel settings (``kernels``:
``bench.compute.kernels.settings``) of this process."""
    import torch

    from bench.compute import kernels

    versions = {n: version(n) for n in LIBRARIES} | {"python": platform.python_version()}
    determinism = {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                   "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
                   "device": "cpu"}
    return {"xprune_version": __version__, "git_commit": git_commit(), "versions": versions,
            "cuda": torch.version.cuda or "none", "determinism": determinism,
            "machine": platform.machine(), "kernels": kernels.settings()}


def version(dist: str) -> str:
    """An installed distribution's version, or ``absent``."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def git_commit() -> str:
    """HEAD of the repository the engine runs from, '+dirty' if it has local changes."""
    repo = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def torch_threads() -> int:
    """This process's torch thread count (a failed task's record names the coordinator's)."""
    import torch

    return torch.get_num_threads()
