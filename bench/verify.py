"""Verification: re-run a seeded sample of published cells from scratch and compare.

Each sampled cell is recomputed in a fresh, empty cache (its baseline retrained, its
scores recomputed), and every stored metric that does not measure time is compared with
the published one: integers (params, MACs) exactly, other numbers within ``tolerance``.
Any difference is a mismatch naming the cell, the field, the published and the new value.

A record is compared only against a re-run on its own device kind (``provenance.device``;
records without one were made on the CPU): GPU and CPU kernels reduce in different orders,
so a CPU re-run of a CUDA record (or the reverse) would not test reproducibility. A CUDA
record on a machine without CUDA is reported as not re-run, with that reason.
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

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def __str__(self) -> str:
        lines = [f"mismatch {m}" for m in self.mismatches] + [f"failed {f}" for f in self.failures]
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
        raise RecordError(f"{where}: a schema {record['schema_version']} record (an earlier "
                          f"protocol) cannot be re-run by this engine (schema "
                          f"{records.SCHEMA_VERSION}); republish it first")
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
           cache_dir: Path | str | None = None) -> VerifyReport:
    """Re-run sampled records from scratch in a temporary cache under ``cache_dir``; compare."""
    check_tolerance(tolerance)
    chosen, total = sample_records(Path(reports), sample, seed)
    report = VerifyReport(Path(reports), total, tolerance)
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xprune-verify-", dir=cache_dir) as fresh:
        for record in chosen:
            label = Cell.from_dict(record["cell"]).label()
            try:
                metrics = _rerun(record, Path(fresh))
            except XPruneError as exc:
                report.failures.append(str(exc))
                continue
            report.checked.append(record["cell_hash"])
            report.devices.add(device_kind(record))
            report.mismatches += [Mismatch(record["cell_hash"], label, name, old, new)
                                  for name, old, new in compare(record["metrics"], metrics, tolerance)]
    return report
