"""Verification: re-run a seeded sample of published cells from scratch and compare.

Each sampled cell is recomputed in a fresh, empty cache (its baseline retrained, its
scores recomputed), and every stored metric that does not measure time is compared with
the published one: integers (params, MACs) exactly, other numbers within ``tolerance``.
Any difference is a mismatch naming the cell, the field, the published and the new value.

A record is compared only against a re-run on its own device kind (``provenance.device``;
records without one were made on the CPU): GPU and CPU kernels reduce in different orders,
so a CPU re-run of a CUDA record (or the reverse) would not test reproducibility. A CUDA
record on a machine without CUDA is reported as not re-run, with that reason.

What a re-run is compared against depends on its baseline's weights (:func:`comparison`):

* **same baseline** (the re-run's ``bench.baseline.digest`` equals the record's
  ``provenance.baseline_digest``): the same bits went in, so every compared field must match
  within ``tolerance`` (the tight check above);
* **different baseline (hardware)**: the re-run trained other weights (other kernels, e.g.
  native instead of pinned, or a CPU the pin does not cover). Bits cannot match, so the record
  is checked statistically (:func:`statistical`): for each of :data:`STAT_FIELDS`, the
  re-run's value and the published values of the same configuration's other seeds give the
  99% Student-t prediction interval of one more draw, mean ± t(0.995, n-1)·s·sqrt(1 + 1/n),
  widened to at least ± ``tolerance`` and clipped to [0, 1]; the record's value must lie
  inside. With no other published seed there is no interval and the record is reported as
  not checkable (a failure, never a silent ok).
"""

from __future__ import annotations

import math
import random
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from . import plugins, records
from .errors import RecordError, XPruneError
from .publish import check_publishable
from .spec import Cell

SCORES = ("dense", "pruned", "recovered")
SCORE_FIELDS = ("acc", "auc", "bal_acc", "sens", "spec", "ece")
COUNTS = ("params_dense", "params", "macs_dense", "macs", "collapsed")
RATIOS = ("compression", "mac_reduction", "achieved_sparsity", "tie_share")
DEFAULT_TOLERANCE = 1e-3
SAME = "same baseline"
HARDWARE = "different baseline (hardware)"
STAT_FIELDS = ("dense.acc", "dense.auc", "pruned.acc", "recovered.acc", "recovered.auc")
STAT_LEVEL = 0.99


class VerifyError(XPruneError):
    """A verify argument is invalid."""


@dataclass(frozen=True)
class Mismatch:
    """One published number the re-run does not reproduce."""

    cell_hash: str
    label: str
    field: str
    published: Any
    rerun: Any

    def __str__(self) -> str:
        return (f"{self.cell_hash} {self.label}: {self.field} published {self.published!r}, "
                f"re-run {self.rerun!r}")


@dataclass
class VerifyReport:
    """What ``verify`` checked and found; ``str()`` is what the CLI prints."""

    reports: Path
    total: int
    tolerance: float
    checked: list[str] = field(default_factory=list)
    devices: set[str] = field(default_factory=set)  # device kinds the checked records re-ran on
    mismatches: list[Mismatch] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    comparisons: dict[str, str] = field(default_factory=dict)  # cell hash -> how it was compared

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def __str__(self) -> str:
        lines = [f"compared {h}: {how}" for h, how in sorted(self.comparisons.items())]
        lines += [f"mismatch {m}" for m in self.mismatches] + [f"failed {f}" for f in self.failures]
        verdict = "ok" if self.ok else (f"{len(self.mismatches)} mismatch(es), "
                                        f"{len(self.failures)} failure(s)")
        on = (f", each re-run on its own device kind ({', '.join(sorted(self.devices))})"
              if self.devices else "")
        lines.append(f"verified {len(self.checked)} of {self.total} record(s) in {self.reports} "
                     f"(tolerance {self.tolerance:g}{on}): {verdict}")
        return "\n".join(lines)


def compare(published: dict[str, Any], rerun: dict[str, Any], tolerance: float) -> list[tuple[str, Any, Any]]:
    """(field, published, re-run) for every compared metric that differs."""
    pairs = [(f"{s}.{k}", published[s][k], rerun[s][k]) for s in SCORES for k in SCORE_FIELDS]
    pairs += [(k, published[k], rerun[k]) for k in COUNTS + RATIOS]
    old_t, new_t = published.get("transparency") or {}, rerun.get("transparency") or {}
    pairs += [(f"transparency.{e}.{k}", old_t[e][k], new_t.get(e, {}).get(k))
              for e in old_t.get("explainers", {}) for k in old_t[e]]
    return [(name, old, new) for name, old, new in pairs
            if not _same(old, new, tolerance, exact=name in COUNTS)]


def check_tolerance(tolerance: float) -> None:
    """A tolerance is a finite, non-negative number (inf passes anything, nan nothing)."""
    if not math.isfinite(tolerance) or tolerance < 0:
        raise VerifyError(f"--tolerance must be a finite, non-negative number, got {tolerance:g}")


def _same(old: Any, new: Any, tolerance: float, exact: bool) -> bool:
    if old is None or new is None or exact:
        return old == new
    return abs(float(old) - float(new)) <= tolerance


def sample_records(reports: Path, sample: int | None, seed: int) -> tuple[list[dict[str, Any]], int]:
    """A seeded random sample of the ok records under ``reports`` (all if ``sample`` is None)."""
    if not Path(reports).is_dir():
        raise RecordError(f"reports folder {reports} does not exist")
    found = sorted((r for r in records.iter_records(Path(reports)) if r["status"] == "ok"),
                   key=lambda r: r["cell_hash"])
    if not found:
        raise RecordError(f"{reports} holds no ok records to verify")
    if sample is None or sample >= len(found):
        return found, len(found)
    if sample < 1:
        raise VerifyError(f"--sample must be at least 1, got {sample}")
    chosen = random.Random(seed).sample(found, sample)
    return sorted(chosen, key=lambda r: r["cell_hash"]), len(found)


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Re-run under the record's torch thread count: floating-point reduction order depends
    on it, and over a whole training run different orders lead to different baselines."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def device_kind(record: dict[str, Any]) -> str:
    """The device kind a record was computed on (``cpu`` for records that do not say)."""
    return (record["provenance"].get("device") or {}).get("kind", "cpu")


def _rerun(record: dict[str, Any], cache: Path) -> dict[str, Any]:
    """Re-run one record's cell in ``cache``; raise RecordError when it cannot be compared."""
    from .runner import execute
    from .tasks import RunCell

    where = f"{record['cell_hash']}"
    if record["schema_version"] != records.SCHEMA_VERSION:
        digest = ("no digest (protocol 2 record), " if record["schema_version"] == 2 else "")
        raise RecordError(f"{where}: {digest}a schema {record['schema_version']} record (an "
                          f"earlier protocol, unpinned kernels) cannot be re-run by this engine "
                          f"(schema {records.SCHEMA_VERSION}); republish it first")
    check_publishable(record, where)
    cell = Cell.from_dict(record["cell"])
    current = str(plugins.get(cell.method).cls.version)
    if current != cell.method_version:
        raise RecordError(f"{where}: method {cell.method} is now version {current}, the record "
                          f"has {cell.method_version}; the cell cannot be re-run as published")
    kind = device_kind(record)
    if kind != "cpu":
        import torch

        if not torch.cuda.is_available():
            raise RecordError(f"{where}: computed on {kind}, and this machine has no CUDA "
                              "device: not re-run (a record is only compared against a re-run "
                              "on its own device kind)")
    with _torch_threads(int(record["provenance"].get("torch_threads") or 0)):
        outcome = execute(RunCell(cell), cache, kind)
    if not outcome.ok:
        raise RecordError(f"{where}: re-run failed: {outcome.error}")
    return outcome.result


def verify(reports: Path | str = "reports", sample: int | None = None,
           tolerance: float = DEFAULT_TOLERANCE, seed: int = 0,
           cache_dir: Path | str | None = None,
           baselines: Path | str | None = None) -> VerifyReport:
    """Re-run sampled records from scratch in a temporary cache under ``cache_dir``; compare.
    ``baselines``: an archive (``xprune baselines export``) imported into that cache first, so
    its baselines are used as they are instead of retrained."""
    check_tolerance(tolerance)
    chosen, total = sample_records(Path(reports), sample, seed)
    report = VerifyReport(Path(reports), total, tolerance)
    seeds = SeedValues(Path(reports))
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xprune-verify-", dir=cache_dir) as fresh:
        if baselines is not None:
            from .baseline import import_archive

            import_archive(Path(baselines), Path(fresh))
        for record in chosen:
            label = Cell.from_dict(record["cell"]).label()
            try:
                metrics = _rerun(record, Path(fresh))
            except XPruneError as exc:
                report.failures.append(str(exc))
                continue
            report.checked.append(record["cell_hash"])
            report.devices.add(device_kind(record))
            judge(record, metrics, label, report, seeds)
    return report


def comparison(record: dict[str, Any], rerun_digest: str | None) -> str:
    """How a re-run is compared with its record: :data:`SAME` when the re-run's baseline has
    the record's weight digest, else :data:`HARDWARE`."""
    published = record["provenance"].get("baseline_digest")
    return SAME if published is not None and published == rerun_digest else HARDWARE


def judge(record: dict[str, Any], metrics: dict[str, Any], label: str, report: VerifyReport,
          seeds: "SeedValues") -> None:
    """Compare one re-run with its record the way :func:`comparison` decides; add what was
    found (the comparison made, mismatches, an uncheckable record) to ``report``."""
    h, tolerance = record["cell_hash"], report.tolerance
    how = comparison(record, metrics.get("baseline_digest"))
    if how == SAME:
        report.comparisons[h] = f"{SAME} (digest {metrics['baseline_digest'][:12]}): " \
                                f"every field within {tolerance:g}"
        report.mismatches += [Mismatch(h, label, name, old, new)
                              for name, old, new in compare(record["metrics"], metrics, tolerance)]
        return
    found = statistical(record, metrics, seeds.of(record), tolerance)
    if found is None:
        report.comparisons[h] = f"{HARDWARE}: not checkable"
        report.failures.append(f"{h} {label}: {HARDWARE} and no other published seed of its "
                               "configuration: no seed interval to check it against")
        return
    report.comparisons[h] = (f"{HARDWARE}: checked statistically (within the "
                             f"{STAT_LEVEL:.0%} seed prediction interval of the re-run and "
                             f"{len(seeds.of(record)) - 1} other published seed(s))")
    report.mismatches += [Mismatch(h, label, f"{name} outside seed interval "
                                   f"[{low:.4f}, {high:.4f}]", old, new)
                          for name, old, new, low, high in found]


def _value(metrics: dict[str, Any], name: str) -> float | None:
    part, key = name.split(".")
    value = (metrics.get(part) or {}).get(key)
    return None if value is None else float(value)


def seed_interval(values: list[float], tolerance: float,
                  level: float = STAT_LEVEL) -> tuple[float, float] | None:
    """Where one more seed's value should fall: the Student-t prediction interval
    mean ± t((1+level)/2, n-1)·s·sqrt(1 + 1/n), at least ± ``tolerance`` wide; None below
    two values."""
    if len(values) < 2:
        return None
    import statistics

    from scipy.stats import t

    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half = float(t.ppf((1 + level) / 2, len(values) - 1)) * sd * math.sqrt(1 + 1 / len(values))
    half = max(half, tolerance)
    return mean - half, mean + half


def statistical(record: dict[str, Any], rerun: dict[str, Any], published: list[dict[str, Any]],
                tolerance: float) -> list[tuple[str, Any, Any, float, float]] | None:
    """(field, published, re-run, low, high) for each :data:`STAT_FIELDS` value of the record
    outside the seed interval built from the re-run and the configuration's other published
    seeds (``published`` less the record itself: a tampered value must not widen its own
    interval), clipped to [0, 1]; None when that leaves fewer than two values."""
    out = []
    others = [r for r in published if r["cell_hash"] != record["cell_hash"]]
    for name in STAT_FIELDS:
        old, new = _value(record["metrics"], name), _value(rerun, name)
        if old is None and new is None:
            continue
        values = [v for v in (_value(r["metrics"], name) for r in others) if v is not None]
        interval = seed_interval(values + ([new] if new is not None else []), tolerance)
        if interval is None:
            return None
        low, high = max(0.0, interval[0]), min(1.0, interval[1])
        if old is None or not low <= old <= high:
            out.append((name, old, new, low, high))
    return out


class SeedValues:
    """The ok records of a reports folder by configuration (the cell less its seed), read
    once when a statistical comparison first needs them."""

    def __init__(self, reports: Path) -> None:
        self.reports = Path(reports)
        self._index: dict[str, list[dict[str, Any]]] | None = None

    @staticmethod
    def configuration(record: dict[str, Any]) -> str:
        cell = {k: v for k, v in record["cell"].items() if k not in ("seed", "transparency")}
        return repr(sorted(cell.items()))

    def of(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The published records of ``record``'s configuration, one per seed."""
        if self._index is None:
            self._index = {}
            for r in records.iter_records(self.reports):
                if r["status"] == "ok" and r["schema_version"] == records.SCHEMA_VERSION:
                    self._index.setdefault(self.configuration(r), []).append(r)
        return self._index.get(self.configuration(record), [])
