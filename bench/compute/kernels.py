"""Pinned CPU kernels: the same instruction set on every x86-64 machine, so the same bits.

PyTorch picks its CPU kernels by what the machine offers: ATen's vectorised kernels by CPU
capability (AVX512 here, AVX2 on most laptops), oneDNN (convolutions) by its best ISA, MKL
(matmuls, BLAS) by its own dispatch. Different kernels sum in different orders, and over a
training run the rounding differences grow into different baselines. The protocol therefore
pins all three to AVX2, which every x86-64 CPU of the last ten years offers:

* ``ATEN_CPU_CAPABILITY=avx2``: ATen's dispatch (read at the first dispatched operation);
* ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's JIT kernels (read when oneDNN first runs);
* ``MKL_CBWR=AVX2,STRICT``: MKL's conditional numerical reproducibility (read at MKL init).

The engine sets them in every process that computes (:func:`pin`), before its first tensor
operation: local workers inherit them when spawned (``bench.run.executors``), Slurm jobs export
them in their batch script and pin again on start (``bench.run.slurm``), the CLI pins itself at
entry (so ``--workers 0`` computes pinned too). ``XPRUNE_NATIVE_KERNELS=1`` opts out (the
machine's own kernels: faster, not reproducible elsewhere); records say which was used
(:func:`settings`, in ``provenance.kernels``). The thread count is not pinned: it is recorded
(``provenance.torch_threads``) and ``xprune verify`` re-runs under it.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

PIN: dict[str, str] = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                       "MKL_CBWR": "AVX2,STRICT"}
OPT_OUT = "XPRUNE_NATIVE_KERNELS"
PINNED_CAPABILITY = "AVX2"  # what torch.backends.cpu.get_cpu_capability() says when pinned


def wanted() -> bool:
    """Whether this process should pin (the default; ``XPRUNE_NATIVE_KERNELS=1`` opts out)."""
    return os.environ.get(OPT_OUT, "") in ("", "0")


def pin() -> None:
    """Set the pin in this process's environment; effective only before its first tensor
    operation (ATen, oneDNN and MKL each read their variable once, when first used)."""
    if wanted():
        os.environ.update(PIN)


def exports() -> list[str]:
    """Shell lines that pin a batch job's environment before Python starts."""
    return [f"export {k}={v}" for k, v in PIN.items()] if wanted() else []


@functools.lru_cache(maxsize=1)
def settings() -> dict[str, Any]:
    """The kernels this process computes with: requested pin, effective ATen capability,
    oneDNN and BLAS versions, CPU model. Imports torch."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    env = {k: os.environ.get(k) for k in PIN}
    return {
        "pinned": env == PIN and capability == PINNED_CAPABILITY,
        "env": env,
        "cpu_capability": capability,
        "cpu_model": cpu_model(),
        "onednn": _config_version(r"MKL-DNN v([0-9.]+)") if torch.backends.mkldnn.is_available()
        else "absent",
        "blas": _blas(),
    }


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``unknown`` where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "unknown"


def _config_version(pattern: str) -> str:
    import torch

    found = re.search(pattern, torch.__config__.show())
    return found.group(1) if found else "unknown"


def _blas() -> str:
    """``mkl <version>``, ``openblas <version>`` or what torch's build says its BLAS is."""
    import torch

    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([0-9.]+)", config)
    if mkl:
        return f"mkl {mkl.group(1)}"
    info = re.search(r"BLAS_INFO=([^,\s]+)", config)
    name = info.group(1) if info else "unknown"
    version = re.search(r"OpenBLAS ([0-9.]+)", config)
    return f"{name} {version.group(1)}" if version else name
