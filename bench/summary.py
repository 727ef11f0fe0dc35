"""The leaderboard math: pure functions from validated record dicts to summaries.

Accuracy is ``metrics.recovered.acc`` (after the cell's recovery), a fraction in [0, 1];
the dense reference is ``metrics.dense.acc``. A *setting* is every axis but method,
sparsity and seed; a *row* is one method (at one version) in one setting, its seeds
averaged per sparsity. The curve area is the trapezoid under mean accuracy over the
measured sparsities divided by their span (Hatefi et al. 2024), so it reads as an accuracy.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

ONE_POINT = 0.01  # one accuracy point, as a fraction


class SettingKey(NamedTuple):
    """Everything that must match for two methods' numbers to be comparable."""

    dataset: str
    size: int
    backbone: str
    granularity: str
    scope: str
    recovery: str
    epochs: int
    reference_per_class: int

    @property
    def slug(self) -> str:
        """A file-name-safe identifier."""
        recovery = self.recovery.replace(":", "")
        return (f"{self.dataset}-{self.size}-{self.backbone}-{self.granularity}-{self.scope}-"
                f"{recovery}-e{self.epochs}-r{self.reference_per_class}")


@dataclass(frozen=True)
class Stat:
    """Mean over seeds with its sample standard deviation (None below two values)."""

    mean: float
    std: float | None
    n: int
    seeds: tuple[int, ...] = ()
    cells: tuple[str, ...] = ()


@dataclass(frozen=True)
class Point:
    """One method at one sparsity in one setting, averaged over seeds."""

    sparsity: float
    acc: Stat
    auc: Stat | None
    macs: Stat
    params: Stat
    speedup: Stat
    latency_b1: Stat
    latency_b64: Stat
    score_seconds: Stat


@dataclass(frozen=True)
class Row:
    """One method in one setting: its curve and the numbers derived from it."""

    method: str
    version: str
    points: tuple[Point, ...]
    dense: Stat
    area: Stat
    within_one_point: float | None
    complete: bool
    rank: float | None = None
    pareto: tuple[float, ...] = ()  # sparsities of this row's points on the setting's front


@dataclass(frozen=True)
class Setting:
    """All rows of one setting, ranked by curve area (complete rows only)."""

    key: SettingKey
    synthetic: bool
    sparsities: tuple[float, ...]
    dense: Stat
    macs_dense: float
    rows: tuple[Row, ...]

    @property
    def best(self) -> tuple[Row, ...]:
        """The row(s) ranked first (several on an exact tie)."""
        return tuple(r for r in self.rows if r.rank is not None and r.rank == min_rank(self.rows))


@dataclass(frozen=True)
class MethodRank:
    """A method's mean rank per dataset and overall (datasets weighted equally)."""

    method: str
    version: str
    per_dataset: dict[str, float] = field(default_factory=dict)
    mean: float = math.nan
    settings: int = 0


def min_rank(rows: Iterable[Row]) -> float | None:
    """The best rank among rows, or None when nothing is ranked."""
    ranks = [r.rank for r in rows if r.rank is not None]
    return min(ranks) if ranks else None


def stat(records: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None]) -> Stat | None:
    """Aggregate one number over records (one per seed); None when no record has it."""
    pairs = [(r, get(r)) for r in records]
    pairs = [(r, v) for r, v in pairs if v is not None]
    if not pairs:
        return None
    values = [float(v) for _, v in pairs]
    return Stat(mean=statistics.fmean(values),
                std=statistics.stdev(values) if len(values) > 1 else None, n=len(values),
                seeds=tuple(r["cell"]["seed"] for r, _ in pairs),
                cells=tuple(r["cell_hash"] for r, _ in pairs))


def curve_area(sparsities: list[float], accs: list[float]) -> float:
    """Trapezoid area under acc(sparsity) divided by the sparsity span (one point: its acc)."""
    if len(sparsities) != len(accs) or not sparsities:
        raise ValueError("curve_area needs equally many sparsities and accuracies (at least one)")
    pairs = sorted(zip(sparsities, accs))
    if len(pairs) == 1:
        return pairs[0][1]
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(pairs))
    return area / (pairs[-1][0] - pairs[0][0])


def within_one_point(sparsities: list[float], accs: list[float], dense: float,
                     tolerance: float = ONE_POINT) -> float | None:
    """Largest measured sparsity whose accuracy is at least ``dense - tolerance``."""
    ok = [s for s, a in zip(sparsities, accs) if a >= dense - tolerance - 1e-12]
    return max(ok) if ok else None


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points (cost, accuracy) that no other point beats: lower cost, higher acc."""
    front = []
    for i, (cost, acc) in enumerate(points):
        dominated = any(c <= cost and a >= acc and (c < cost or a > acc)
                        for j, (c, a) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], points[i][1]))


def rank(scores: dict[Any, float]) -> dict[Any, float]:
    """Rank 1 for the highest score; exact ties share the mean of their ranks."""
    ordered = sorted(scores.values(), reverse=True)
    positions: dict[float, list[int]] = defaultdict(list)
    for position, value in enumerate(ordered, start=1):
        positions[value].append(position)
    return {k: statistics.fmean(positions[v]) for k, v in scores.items()}


def setting_key(record: dict[str, Any]) -> SettingKey:
    """The setting a record belongs to."""
    c = record["cell"]
    return SettingKey(c["dataset"], c["size"], c["backbone"], c["granularity"], c["scope"],
                      c["recovery"], c["epochs"], c["reference_per_class"])


def _acc(r: dict[str, Any]) -> float:
    """Accuracy after the cell's recovery."""
    return r["metrics"]["recovered"]["acc"]


def _dense(records: list[dict[str, Any]]) -> Stat:
    """The dense accuracy, one value per baseline (seed), not per cell."""
    per_baseline: dict[str, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r["cell"]["seed"], r["cell_hash"])):
        per_baseline.setdefault(r["provenance"]["baseline_hash"], r)
    return stat(list(per_baseline.values()), lambda r: r["metrics"]["dense"]["acc"])


def _point(sparsity: float, records: list[dict[str, Any]]) -> Point:
    """Aggregate one sparsity's records (one per seed)."""
    records = sorted(records, key=lambda r: (r["cell"]["seed"], r["cell_hash"]))

    def m(key: str) -> Stat | None:
        return stat(records, lambda r: r["metrics"][key])

    def lat(key: str) -> Stat | None:
        return stat(records, lambda r: r["metrics"]["latency_ms"][key])

    return Point(sparsity=sparsity, acc=stat(records, _acc),
                 auc=stat(records, lambda r: r["metrics"]["recovered"]["auc"]),
                 macs=m("macs"), params=m("params"), speedup=m("speedup"),
                 latency_b1=lat("pruned_b1"), latency_b64=lat("pruned_b64"),
                 score_seconds=m("score_seconds"))


def _area(records: list[dict[str, Any]], points: list[Point]) -> Stat:
    """Area of the mean curve; spread over per-seed areas when every seed has every sparsity."""
    xs = [p.sparsity for p in points]
    mean = curve_area(xs, [p.acc.mean for p in points])
    by_seed: dict[int, dict[float, float]] = defaultdict(dict)
    for r in records:
        by_seed[r["cell"]["seed"]][r["cell"]["sparsity"]] = _acc(r)
    full = {s: c for s, c in by_seed.items() if sorted(c) == xs}
    per_seed = [curve_area(list(c), list(c.values())) for c in full.values()]
    std = statistics.stdev(per_seed) if len(per_seed) > 1 and len(full) == len(by_seed) else None
    return Stat(mean=mean, std=std, n=len(by_seed), seeds=tuple(sorted(by_seed)),
                cells=tuple(sorted(r["cell_hash"] for r in records)))


def _row(method: str, version: str, records: list[dict[str, Any]],
         sparsities: tuple[float, ...]) -> Row:
    """One method's row: points per sparsity, dense reference, area, within-1-point."""
    by_sparsity: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_sparsity[r["cell"]["sparsity"]].append(r)
    points = [_point(s, by_sparsity[s]) for s in sorted(by_sparsity)]
    dense = _dense(records)
    xs, ys = [p.sparsity for p in points], [p.acc.mean for p in points]
    return Row(method=method, version=version, points=tuple(points), dense=dense,
               area=_area(records, points), within_one_point=within_one_point(xs, ys, dense.mean),
               complete=tuple(xs) == sparsities)


def summarize_setting(records: list[dict[str, Any]]) -> Setting:
    """Rows, ranks and Pareto front of one setting's ok records (any seeds, methods)."""
    if not records:
        raise ValueError("summarize_setting needs at least one record")
    sparsities = tuple(sorted({r["cell"]["sparsity"] for r in records}))
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["cell"]["method"], r["cell"]["method_version"])].append(r)
    rows = [_row(m, v, rs, sparsities) for (m, v), rs in sorted(groups.items())]
    ranks = rank({(r.method, r.version): r.area.mean for r in rows if r.complete})
    flat = [(row, p) for row in rows for p in row.points]
    front = {(flat[i][0].method, flat[i][0].version, flat[i][1].sparsity)
             for i in pareto_front([(p.macs.mean, p.acc.mean) for _, p in flat])}
    rows = [replace(row, rank=ranks.get((row.method, row.version)),
                    pareto=tuple(s for m, v, s in sorted(front) if (m, v) == (row.method, row.version)))
            for row in rows]
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0.0, r.method, r.version))
    return Setting(key=setting_key(records[0]), synthetic=bool(records[0]["dataset"]["synthetic"]),
                   sparsities=sparsities, dense=_dense(records),
                   macs_dense=statistics.fmean(r["metrics"]["macs_dense"] for r in records),
                   rows=tuple(rows))


def mean_ranks(settings: Iterable[Setting]) -> list[MethodRank]:
    """Mean rank per method: averaged within each dataset, then across datasets."""
    ranks: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for setting in settings:
        for row in setting.rows:
            if row.rank is not None:
                ranks[(row.method, row.version)][setting.key.dataset].append(row.rank)
    out = []
    for (method, version), per in ranks.items():
        per_dataset = {d: statistics.fmean(v) for d, v in sorted(per.items())}
        out.append(MethodRank(method, version, per_dataset, statistics.fmean(per_dataset.values()),
                              sum(len(v) for v in per.values())))
    return sorted(out, key=lambda m: (m.mean, m.method, m.version))


def summarize(records: Iterable[dict[str, Any]]) -> tuple[list[Setting], list[MethodRank], int]:
    """All settings (sorted by key), the overall mean ranks, and how many failed records were skipped."""
    groups: dict[SettingKey, list[dict[str, Any]]] = defaultdict(list)
    failed = 0
    for r in records:
        if r["status"] != "ok":
            failed += 1
        else:
            groups[setting_key(r)].append(r)
    settings = [summarize_setting(groups[k]) for k in sorted(groups)]
    return settings, mean_ranks(settings), failed
