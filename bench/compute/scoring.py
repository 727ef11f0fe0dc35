"""Running a method plugin: a private model copy, the reference batch, contract validation.

The engine checks every returned tensor (type, shape, finiteness) and turns a violation into
a PluginError naming the site, so a broken plugin fails its cells, never the matrix.
Validated scores are cached per (baseline, method, version, granularity, reference set).
:func:`get` computes them in a fresh scoring process (``bench.compute.sandbox``), bounded by a
timeout (``--cell-timeout``, else ``bench.compute.sandbox.default_score_timeout`` of the backbone);
:func:`run_method` is what runs inside that process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from bench import plugins
from bench.api import Batch, Method, Site
from bench.compute import cache
from bench.compute import device as devices
from bench.compute.data import Dataset, reference_batch
from bench.compute.units import find_sites, scoring_copy
from bench.core import paths
from bench.core.errors import PluginError, one_line
from bench.core.spec import ScoreKey


def validate(name: str, raw: Any, sites: Sequence[Site]) -> dict[str, Tensor]:
    """Check a plugin's return value against the contract; return float32 CPU copies."""
    if not isinstance(raw, Mapping):
        raise PluginError(f"{name}: score() returned {type(raw).__name__}, expected a dict "
                          "of site name -> tensor")
    expected = {s.name: s for s in sites}
    missing = [n for n in expected if n not in raw]
    extra = [str(n) for n in raw if n not in expected]
    if missing:
        raise PluginError(f"{name}: no scores for {len(missing)} site(s), e.g. {missing[0]!r}")
    if extra:
        raise PluginError(f"{name}: scores for unknown site(s), e.g. {extra[0]!r}")
    out = {}
    for site_name, site in expected.items():
        value = raw[site_name]
        if not isinstance(value, Tensor):
            raise PluginError(f"{name}: site {site_name!r}: got {type(value).__name__}, "
                              "expected a torch.Tensor")
        if tuple(value.shape) != site.shape:
            raise PluginError(f"{name}: site {site_name!r}: expected shape {site.shape}, "
                              f"got {tuple(value.shape)}")
        if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
            raise PluginError(f"{name}: site {site_name!r}: dtype {value.dtype} is not real-valued")
        value = value.detach().to("cpu", torch.float32)
        if not torch.isfinite(value).all():
            raise PluginError(f"{name}: site {site_name!r}: scores contain NaN or infinity")
        out[site_name] = value.clone()
    return out


def run_method(cls: type[Method], model: nn.Module, granularity: str, batch: Batch,
               seed: int) -> tuple[dict[str, Tensor], float]:
    """Score ``model``'s sites with a plugin class; return validated scores and seconds taken."""
    if granularity not in cls.granularities:
        raise PluginError(f"{cls.name}: granularity {granularity!r} is not supported "
                          f"(declares {', '.join(cls.granularities)})")
    clone = scoring_copy(model)
    sites = find_sites(clone, granularity)
    torch.manual_seed(seed)
    start = time.perf_counter()
    try:
        with torch.enable_grad():
            raw = cls().score(clone, sites, batch)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"{cls.name}: score() raised {one_line(exc, typed=True)}") from exc
    seconds = time.perf_counter() - start
    return validate(cls.name, raw, sites), seconds


def get(key: ScoreKey, model: nn.Module, dataset: Dataset, cache_dir: Path,
        device: str = "cpu", timeout: float | None = None) -> dict[str, Any]:
    """Cached ``{"scores", "seconds", "isolation"}`` for a score key (computed on first use
    in a scoring process, on the model's device, within ``timeout`` seconds, default
    ``sandbox.default_score_timeout``; scores are stored on the CPU)."""
    from bench.compute import sandbox

    def compute() -> dict[str, Any]:
        info = plugins.info(key.method)
        if info.version != key.method_version:
            raise PluginError(f"{key.method}: the plugin is now version {info.version}, the "
                              f"cell asks for {key.method_version}")
        if key.granularity not in info.granularities:
            raise PluginError(f"{key.method}: granularity {key.granularity!r} is not supported "
                              f"(declares {', '.join(info.granularities)})")
        batch = reference_batch(dataset, key.reference_per_class, key.baseline.seed)
        if device != "cpu":
            batch = batch.to(devices.of(model))
        limit = timeout or sandbox.default_score_timeout(key.baseline.backbone)
        scores, seconds = sandbox.score(info.source, key.method, model, key.granularity, batch,
                                        key.baseline.seed, limit, device, key.method_version)
        return {"scores": scores, "seconds": seconds, "key": key.hash,
                "isolation": sandbox.isolation()}

    return cache.get_or_compute(paths.scores(key, cache_dir, device),
                                compute)
