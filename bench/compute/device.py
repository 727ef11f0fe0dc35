"""Where tasks compute (``--device cpu|cuda|auto``) and what records say about it.

The device is a condition of a run, like the torch thread count, not part of a cell's
identity: cell, baseline and score hashes are the same on every device, so ``--device cpu``
reproduces the published records bit for bit. Baselines, scores and dense reference maps
computed on a GPU are cached under their own file names (:func:`cache_name`), so a CUDA run
never reuses a CPU baseline or the reverse; records name the device and the GPU
(``provenance.device``), and ``xprune verify`` re-runs a record on its own device kind.

Data stay on the CPU; each step moves what it feeds the model to the model's device
(:func:`of`), so the CPU code path is the one main always ran (``.to("cpu")`` of a CPU
tensor is the tensor itself).

CUDA runs are made as deterministic as torch allows (:func:`configure`): cuDNN deterministic
and not benchmarking, ``torch.use_deterministic_algorithms(True, warn_only=True)`` (warn, not
fail: some kernels have no deterministic CUDA version, e.g. adaptive average pooling's
backward) with ``CUBLAS_WORKSPACE_CONFIG=:4096:8``; the settings are recorded.
"""

from __future__ import annotations

import os
from typing import Any

from bench.core.errors import SpecError
from bench.core.spec import DEVICES

CUBLAS_WORKSPACE = ":4096:8"


def resolve(requested: str, executor: str = "local", slurm_gpus: int = 0) -> str:
    """The device kind tasks will use, ``cpu`` or ``cuda``, for a requested device.

    ``auto`` is ``cuda`` when torch sees a CUDA device here (``--executor local``) or when
    Slurm tasks get GPUs (``--slurm-gpus``). ``cuda`` where there is none is a SpecError.
    """
    if requested not in DEVICES:
        raise SpecError(f"unknown device {requested!r} (known: {', '.join(DEVICES)})")
    if requested == "cpu":
        return "cpu"
    if executor == "slurm":
        if requested == "cuda" and slurm_gpus < 1:
            raise SpecError("--device cuda with --executor slurm needs --slurm-gpus N (N >= 1)")
        return "cuda" if slurm_gpus >= 1 else "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
        raise SpecError(f"--device cuda: torch sees no CUDA device here (torch "
                        f"{torch.__version__}, {build}); use --device cpu or auto")
    return "cpu"


def configure(device: str) -> dict[str, Any]:
    """Apply this process's determinism settings for ``device``; return them (for records).

    On the CPU nothing is changed (the settings main always ran with are reported).
    """
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            raise SpecError("this worker was asked for CUDA but torch sees no CUDA device")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    settings = {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
                "device": device}
    if device == "cuda":
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        settings |= {"deterministic_warn_only": warn_only,
                     "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
                     "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG", ""),
                     "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                     "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32)}
    return settings


def describe(device: str) -> dict[str, Any]:
    """The device a task ran on: ``{"kind": "cpu"}`` or the kind plus the GPU's name."""
    if device != "cuda":
        return {"kind": device, "gpu": None}
    import torch

    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return {"kind": "cuda", "gpu": torch.cuda.get_device_name(index),
            "capability": f"{major}.{minor}", "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version()}


def of(model: Any) -> Any:
    """The device a model's parameters live on (the CPU for a model without parameters)."""
    import torch

    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
