"""Verification: re-run a seeded sample of published cells from scratch and compare.

Each sampled cell is recomputed in a fresh, empty cache (its baseline retrained, its
scores recomputed), and every stored metric that does not measure time is compared with
the published one: integers (params, MACs) exactly, other numbers within ``tolerance``.
Any difference is a mismatch naming the cell, the field, the published and the new value.

The re-run never imports the method plugin: its scores come from a fresh scoring process
(``bench.compute.sandbox``), so a plugin that patches the engine at import cannot make its own
re-run agree with an edited record. Timings are compared when the re-run's CPU (or GPU) and thread
count are the record's (speed-up within a factor of 2, latency in ms within 5: a loaded
machine slows both models alike but not the clock), and are listed as unverifiable otherwise, with the wall times of the run (``*_seconds``), which are
always. The record's method block (description, family, reference, version, the plugin
file's sha256 where recorded) is compared with the plugin's current declarations. A record
that cannot be read or compared fails as that record.

A record is compared only against a re-run on its own device kind (``provenance.device``;
records without one were made on the CPU): GPU and CPU kernels reduce in different orders,
so a CPU re-run of a CUDA record (or the reverse) would not test reproducibility. A CUDA
record on a machine without CUDA is reported as not re-run, with that reason.

What a re-run is compared against depends on its baseline's weights (:func:`comparison`):

* **same baseline** (the re-run's ``bench.compute.baseline.digest`` equals the record's
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

from bench import plugins
from bench.core.errors import RecordError, XPruneError
from bench.core.method import MethodLabel
from bench.core.spec import Cell
from bench.results import records
from bench.results.publish import check_publishable

DEFAULT_TOLERANCE = 1e-3
SAME = "same baseline"
HARDWARE = "different baseline (hardware)"
STAT_FIELDS = ("dense.acc", "dense.auc", "pruned.acc", "recovered.acc", "recovered.auc")
STAT_LEVEL = 0.99
DEFAULT_TIMING_TOLERANCE = 1.0  # speed-ups agree within a factor of 2 (shared machines are noisy)
ABSOLUTE_TIMING_FACTOR = 5.0  # milliseconds, which a loaded machine inflates far more, within 5x
TIMINGS = ("dense_ms", "pruned_ms", "speedup")
WALL_TIMES = ("score_seconds", "prune_seconds", "recover_seconds")
METHOD_FIELDS = ("description", "family", "reference", "version", "source", "source_sha256")


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
    unverifiable: set[str] = field(default_factory=set)  # fields a re-run cannot reproduce

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
        if self.unverifiable:
            lines.append("unverifiable (not compared): " + ", ".join(sorted(self.unverifiable)))
        lines.append(f"verified {len(self.checked)} of {self.total} record(s) in {self.reports} "
                     f"(tolerance {self.tolerance:g}, speed-up within x"
                     f"{1 + DEFAULT_TIMING_TOLERANCE:g}, latency within x"
                     f"{ABSOLUTE_TIMING_FACTOR:g}{on}): {verdict}")
        return "\n".join(lines)


def compare(published: dict[str, Any], rerun: dict[str, Any], tolerance: float) -> list[tuple[str, Any, Any]]:
    """(field, published, re-run) for every compared metric that differs: each task score of
    each stage, and every single-value metric of the schema (``records.scalar_fields``;
    integers and flags exactly) but the wall times; a field the published record lacks (an
    older schema) is not compared."""
    exact, numeric = records.scalar_fields()
    pairs = [(f"{s}.{k}", published[s][k], rerun[s].get(k)) for s in records.SCORE_BLOCKS
             for k in records.score_fields() if k in published[s]]
    pairs += [(k, published[k], rerun.get(k)) for k in exact + numeric
              if k in published and k not in WALL_TIMES]
    old_t, new_t = published.get("transparency") or {}, rerun.get("transparency") or {}
    pairs += [(f"transparency.{e}.{k}", old_t[e][k], new_t.get(e, {}).get(k))
              for e in old_t.get("explainers", {}) for k in old_t[e]]
    return [(name, old, new) for name, old, new in pairs
            if not _same(old, new, tolerance, exact=name in exact)]


def check_tolerance(tolerance: float) -> None:
    """A tolerance is a finite, non-negative number (inf passes anything, nan nothing)."""
    if not math.isfinite(tolerance) or tolerance < 0:
        raise VerifyError(f"--tolerance must be a finite, non-negative number, got {tolerance:g}")


def _same(old: Any, new: Any, tolerance: float, exact: bool) -> bool:
    if old is None or new is None or exact:
        return old == new
    return abs(float(old) - float(new)) <= tolerance


def compare_timings(published: dict[str, Any], rerun: dict[str, Any],
                    tolerance: float = DEFAULT_TIMING_TOLERANCE,
                    ) -> tuple[list[tuple[str, Any, Any]], set[str]]:
    """(field, published, re-run) for every speed-up outside a factor of ``1 + tolerance``
    and every latency in ms outside ``ABSOLUTE_TIMING_FACTOR``, and the timing fields that cannot be compared (another CPU or GPU,
    another thread count, wall times of the run)."""
    differing, unverifiable = [], set(WALL_TIMES)
    for where in ("", "gpu"):
        old, new = published.get("latency") or {}, rerun.get("latency") or {}
        if where:
            old, new = old.get(where) or {}, new.get(where) or {}
            if not old:
                continue
        prefix = f"latency.{where + '.' if where else ''}"
        same_machine = (new and old.get("hardware") == new.get("hardware")
                        and old.get("threads") == new.get("threads"))
        for batch in ("b1", "b64"):
            for name in TIMINGS:
                key = f"{prefix}{batch}.{name}"
                a, b = (old.get(batch) or {}).get(name), (new.get(batch) or {}).get(name)
                if not same_machine or a is None or b is None:
                    unverifiable.add(f"{prefix}{name} (other hardware)" if not same_machine
                                     else key)
                elif not _within_factor(float(a), float(b), 1 + tolerance if name == "speedup"
                                        else max(1 + tolerance, ABSOLUTE_TIMING_FACTOR)):
                    differing.append((key, a, b))
    return differing, unverifiable


def _within_factor(old: float, new: float, factor: float) -> bool:
    if not (math.isfinite(old) and math.isfinite(new)) or old <= 0 or new <= 0:
        return old == new
    return max(old / new, new / old) <= factor


def compare_method(block: dict[str, Any], label: MethodLabel) -> list[tuple[str, Any, Any]]:
    """(field, published, current) for every method declaration the record states that the
    plugin re-run no longer declares (a record without a digest is not compared on it)."""
    current = label.record_block()
    return [(f"method.{k}", block.get(k), current.get(k)) for k in METHOD_FIELDS
            if k in block and (k != "source_sha256" or current.get(k))
            and block.get(k) != current.get(k)]


def sample_records(reports: Path, sample: int | None, seed: int,
                   unreadable: list[str] | None = None) -> tuple[list[dict[str, Any]], int]:
    """A seeded random sample of the ok records under ``reports`` (all if ``sample`` is None);
    a record file that cannot be read or validated is appended to ``unreadable`` (with its
    reason) when given, else raises."""
    if not Path(reports).is_dir():
        raise RecordError(f"reports folder {reports} does not exist")
    found = sorted((r for r in _readable(Path(reports), unreadable) if r["status"] == "ok"),
                   key=lambda r: r["cell_hash"])
    if not found:
        if unreadable:
            return [], 0
        raise RecordError(f"{reports} holds no ok records to verify")
    if sample is None or sample >= len(found):
        return found, len(found)
    if sample < 1:
        raise VerifyError(f"--sample must be at least 1, got {sample}")
    chosen = random.Random(seed).sample(found, sample)
    return sorted(chosen, key=lambda r: r["cell_hash"]), len(found)


def _readable(reports: Path, unreadable: list[str] | None) -> Iterator[dict[str, Any]]:
    """The records under ``reports``; one that fails to read is noted in ``unreadable``."""
    if unreadable is None:
        yield from records.iter_records(reports)
        return
    for path in sorted(reports.rglob("*.json")):
        if path.name.startswith(".tmp-"):
            continue
        try:
            yield records.read(path)
        except Exception as exc:  # malformed or hostile: that record fails, not verify
            message = str(exc) if isinstance(exc, XPruneError) else f"{type(exc).__name__}"
            unreadable.append(f"{path.name}: unreadable record ({message[:300]})")


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
    from bench.compute.runner import execute
    from bench.core.tasks import RunCell

    where = f"{record['cell_hash']}"
    if record["schema_version"] != records.SCHEMA_VERSION:
        digest = ("no digest (protocol 2 record), " if record["schema_version"] == 2 else "")
        raise RecordError(f"{where}: {digest}a schema {record['schema_version']} record (an "
                          f"earlier protocol, unpinned kernels) cannot be re-run by this engine "
                          f"(schema {records.SCHEMA_VERSION}); republish it first")
    check_publishable(record, where)
    cell = Cell.from_dict(record["cell"])
    current = plugins.info(cell.method).version
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
    unreadable: list[str] = []
    chosen, total = sample_records(Path(reports), sample, seed, unreadable)
    report = VerifyReport(Path(reports), total + len(unreadable), tolerance)
    report.failures += unreadable
    seeds = SeedValues(Path(reports))
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xprune-verify-", dir=cache_dir) as fresh:
        if baselines is not None:
            from bench.compute.baseline import import_archive

            import_archive(Path(baselines), Path(fresh))
        for record in chosen:
            _verify_one(record, Path(fresh), report, seeds)
    return report


def _verify_one(record: dict[str, Any], cache: Path, report: VerifyReport,
                seeds: "SeedValues") -> None:
    """Re-run and compare one record into ``report``; a record that cannot be re-run or
    compared (malformed, hostile, edited) is a failure naming it, never an internal error."""
    where = str(record.get("cell_hash", "?")) if isinstance(record, dict) else "?"
    try:
        label = Cell.from_dict(record["cell"]).label()
        current = plugins.info(record["cell"]["method"]).label
        metrics = _rerun(record, cache)
        timing, unverifiable = compare_timings(record["metrics"], metrics)
        found = timing + compare_method(record["method"], current)
        judge(record, metrics, label, report, seeds)  # the task metrics, as the digest decides
    except XPruneError as exc:
        report.failures.append(str(exc))
        return
    except Exception as exc:  # a hostile record must fail as itself
        report.failures.append(f"{where}: record cannot be verified "
                               f"({type(exc).__name__}: {str(exc)[:200]})")
        return
    report.checked.append(record["cell_hash"])
    report.devices.add(device_kind(record))
    report.unverifiable |= unverifiable
    report.mismatches += [Mismatch(record["cell_hash"], label, name, old, new)
                          for name, old, new in found]


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
