"""The leaderboard math: pure functions from validated record dicts to summaries.

Every summary is computed for one *metric* of the recovered model (``metrics.recovered``):
balanced accuracy (``bal_acc``, the primary, ranking metric: the mean per-class recall, so a
model that answers one class scores chance, 1/K, whatever the class mix), AUC (threshold-free)
or ACC (kept for comparison with MedMNIST; a constant majority-class model scores the test
set's majority share). A fraction in [0, 1]; the dense reference is ``metrics.dense.<metric>``. A *setting* is every axis but method,
sparsity and seed; a *row* is one method (at one version) in one setting, its seeds
averaged per sparsity. The curve area is the trapezoid under accuracy over the measured
sparsities divided by their span (Hatefi et al. 2024), so it reads as an accuracy; it is
computed per seed and reported as the mean with a 95% t-interval over seeds.

Methods are compared per granularity (channel-only methods are never ranked against weight
settings): :func:`compare` runs a Friedman test with the Nemenyi post-hoc over the settings
in which every compared method has a complete curve (see :mod:`bench.results.stats`).

Schema 1 records (no clinical metrics, collapse flags or interleaved latency) are read too;
what they lack is ``None``.
"""

from __future__ import annotations

import functools
import itertools
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from bench.core.spec import PROTOCOL
from bench.results import records
from bench.results.stats import (
    CORRELATION,
    POSITIVE,
    UNIT,
    Paired,
    Significance,
    block_ranks,
    friedman,
    paired_tests,
    t_interval,
)

ONE_POINT = 0.01  # one accuracy point, as a fraction
METRICS = ("bal_acc", "auc", "acc")  # the order the site offers them in
PRIMARY = "bal_acc"  # the ranking metric (docs/design.md says why)
METRIC_NAMES = {"bal_acc": "balanced accuracy", "auc": "AUC", "acc": "accuracy"}
METRIC_SHORT = {"bal_acc": "Bal. ACC", "auc": "AUC", "acc": "ACC"}
COLLAPSE_MARGIN = 0.02  # a point within this of its metric's constant-model floor is collapsed


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
    min_steps: int = 0  # schema 1 records predate the minimum-steps recipe
    # The engine protocol that computed the records (records.protocol): other baselines and
    # kernels, so records of two protocols never meet in one setting.
    protocol: int = PROTOCOL

    @property
    def slug(self) -> str:
        """A file-name-safe identifier (settings of an older protocol end in ``-p<N>``)."""
        recovery = self.recovery.replace(":", "")
        older = f"-p{self.protocol}" if self.protocol != PROTOCOL else ""
        return (f"{self.dataset}-{self.size}-{self.backbone}-{self.granularity}-{self.scope}-"
                f"{recovery}-e{self.epochs}-r{self.reference_per_class}-m{self.min_steps}{older}")


@dataclass(frozen=True)
class Stat:
    """Mean over seeds with its sample standard deviation and 95% t-interval (None below 2)."""

    mean: float
    std: float | None
    n: int
    seeds: tuple[int, ...] = ()
    cells: tuple[str, ...] = ()
    ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class Point:
    """One method at one sparsity in one setting, averaged over seeds.

    ``collapsed``: how many of its seeds collapsed (balanced accuracy within 0.02 of chance;
    None for schema 1 records). ``speedup_b64``: the measured latency ratio dense/pruned at
    batch 64; ``within_noise``: the share of its cells whose speed-up interval contains 1.
    """

    sparsity: float
    acc: Stat
    auc: Stat | None
    bal_acc: Stat | None
    collapsed: int | None
    macs: Stat
    params: Stat
    mac_reduction: Stat
    latency_b1: Stat | None
    latency_b64: Stat | None
    speedup_b1: Stat | None
    speedup_b64: Stat | None
    within_noise: float | None
    score_seconds: Stat
    preserved: Stat | None = None  # Spearman of dense vs pruned reference-LRP maps
    iou: Stat | None = None  # overlap of their top-10% pixels

    def value(self, metric: str) -> Stat | None:
        """The point's ``bal_acc``, ``auc`` or ``acc``."""
        return {"bal_acc": self.bal_acc, "auc": self.auc, "acc": self.acc}[metric]


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
    collapsed: int | None = None  # collapsed (point, seed) pairs inside the curve area
    preserved: Stat | None = None  # mean over sparsities of ``Point.preserved``, per seed
    auc_area: Stat | None = None  # the same curve area over AUC (None when AUC is missing)
    metric: str = "acc"  # what ``area``, ``rank``, ``within_one_point`` and ``pareto`` measure
    areas: dict[str, Stat | None] = field(default_factory=dict)  # curve area per metric


@dataclass(frozen=True)
class Setting:
    """All rows of one setting, ranked by curve area (complete rows only)."""

    key: SettingKey
    synthetic: bool
    sparsities: tuple[float, ...]
    dense: Stat
    macs_dense: float
    rows: tuple[Row, ...]
    dense_auc: Stat | None = None
    dense_latency_b64: float | None = None  # dense ms at batch 64, mean over every cell (schema 2)
    metric: str = "acc"  # what ``dense`` and the rows' areas and ranks measure
    denses: dict[str, Stat | None] = field(default_factory=dict)  # the dense model per metric
    chance: float | None = None  # 1/K: a constant model's balanced accuracy (None: schema 1)
    majority: float | None = None  # the test set's majority-class share (None: not known)

    @property
    def best(self) -> tuple[Row, ...]:
        """The row(s) ranked first (several on an exact tie)."""
        return tuple(r for r in self.rows if r.rank is not None and r.rank == min_rank(self.rows))

    @property
    def leaders(self) -> tuple[Row, ...]:
        """The rows the data cannot separate from the first: the first-ranked row(s) and every
        ranked row whose curve-area 95% interval over seeds overlaps the first's (every ranked
        row when the first has no interval: one seed cannot separate anything)."""
        best = self.best
        if not best:
            return ()
        top = best[0].area
        ranked = [r for r in self.rows if r.rank is not None]
        if top.ci is None:
            return tuple(ranked)
        return tuple(r for r in ranked if r in best or (r.area.ci is not None
                                                        and r.area.ci[1] >= top.ci[0]))

    @property
    def floor(self) -> float | None:
        """What a constant model scores under the setting's metric: chance (1/K) for balanced
        accuracy, 0.5 for AUC, the majority share for ACC; None when unknown."""
        return {"bal_acc": self.chance, "auc": 0.5, "acc": self.majority}[self.metric]

    def at_floor(self, value: float | None) -> bool:
        """Whether a value is at or below the floor (within ``COLLAPSE_MARGIN``): collapsed."""
        floor = self.floor
        return value is not None and floor is not None and value <= floor + COLLAPSE_MARGIN

    @property
    def span(self) -> tuple[float, float]:
        """The sparsity range the curve areas of this setting cover."""
        return self.sparsities[0], self.sparsities[-1]


@dataclass(frozen=True)
class Comparison:
    """Methods of one granularity compared over the settings where all of them are complete.

    ``excluded``: settings left out because a compared method has no complete curve there;
    ``left_out``: methods with complete curves in no more than half of the settings (compared
    nowhere rather than shrinking every block).
    """

    granularity: str
    significance: Significance
    blocks: tuple[SettingKey, ...]
    per_dataset: dict[str, dict[str, float]]  # method -> dataset -> mean rank there
    excluded: tuple[SettingKey, ...] = ()
    left_out: tuple[str, ...] = ()
    architecture: str = "cnn"
    metric: str = "acc"
    against: dict[str, dict[str, Paired]] = field(default_factory=dict)  # reference -> method -> test

    @property
    def slug(self) -> str:
        """A file-name-safe identifier of granularity and architecture."""
        return f"{self.granularity}-{self.architecture}"


def min_rank(rows: Iterable[Row]) -> float | None:
    """The best rank among rows, or None when nothing is ranked."""
    ranks = [r.rank for r in rows if r.rank is not None]
    return min(ranks) if ranks else None


def stat(records: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None],
         bounds: tuple[float, float] = UNIT) -> Stat | None:
    """Aggregate one number over records (one per seed), its interval clipped to ``bounds``
    (fractions unless told); None when no record has it."""
    pairs = [(r, get(r)) for r in records]
    pairs = [(r, v) for r, v in pairs if v is not None]
    if not pairs:
        return None
    values = [float(v) for _, v in pairs]
    return Stat(mean=statistics.fmean(values),
                std=statistics.stdev(values) if len(values) > 1 else None, n=len(values),
                seeds=tuple(r["cell"]["seed"] for r, _ in pairs),
                cells=tuple(r["cell_hash"] for r, _ in pairs), ci=t_interval(values, bounds=bounds))


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


def setting_key(record: dict[str, Any]) -> SettingKey:
    """The setting a record belongs to."""
    c = record["cell"]
    return SettingKey(c["dataset"], c["size"], c["backbone"], c["granularity"], c["scope"],
                      c["recovery"], c["epochs"], c["reference_per_class"], c.get("min_steps", 0),
                      records.protocol(record))


def _acc(r: dict[str, Any]) -> float:
    """Accuracy after the cell's recovery."""
    return r["metrics"]["recovered"]["acc"]


def _dense(records: list[dict[str, Any]], metric: str = "acc") -> Stat | None:
    """A dense-model metric, one value per baseline (seed), not per cell."""
    per_baseline: dict[str, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r["cell"]["seed"], r["cell_hash"])):
        per_baseline.setdefault(r["provenance"]["baseline_hash"], r)
    return stat(list(per_baseline.values()), lambda r: r["metrics"]["dense"].get(metric))


def _auc(r: dict[str, Any]) -> float | None:
    """AUC after the cell's recovery (None when the evaluator could not compute it)."""
    return r["metrics"]["recovered"]["auc"]


def _latency(r: dict[str, Any], batch: str, field_: str) -> float | None:
    """A schema 2 latency figure (``pruned_ms`` or ``speedup``); None for schema 1."""
    block = r["metrics"].get("latency", {}).get(batch)
    return None if block is None else block[field_]


def _mac_reduction(r: dict[str, Any]) -> float:
    """Dense / pruned MACs (schema 1 called it ``speedup``)."""
    m = r["metrics"]
    return m["mac_reduction"] if "mac_reduction" in m else m["speedup"]




# The reference LRP lens of a record (bench.compute.explain.reference_explainers): zennit EPF on a
# CNN, AttnLRP on a transformer. Preservation columns read whichever the record measured.
LRP_EXPLAINERS = ("lrp-epf", "lrp-attn")


def _agreement(r: dict[str, Any], metric: str) -> float | None:
    """A transparency metric of the reference LRP explainer (None when not measured)."""
    block = r["metrics"].get("transparency") or {}
    name = preservation_explainer(block)
    return None if name is None else block[name].get(metric)


def preservation_explainer(block: dict[str, Any]) -> str | None:
    """The reference LRP explainer a transparency block measured (EPF on a CNN, AttnLRP on a
    transformer); None when it has none."""
    return next((n for n in LRP_EXPLAINERS if n in block), None)


def _point(sparsity: float, records: list[dict[str, Any]]) -> Point:
    """Aggregate one sparsity's records (one per seed)."""
    records = sorted(records, key=lambda r: (r["cell"]["seed"], r["cell_hash"]))

    def m(key: str) -> Stat | None:
        return stat(records, lambda r: r["metrics"][key], POSITIVE)

    flags = [r["metrics"].get("collapsed") for r in records]
    noise = [r["metrics"]["latency"]["b64"]["within_noise"] for r in records
             if "latency" in r["metrics"]]
    return Point(sparsity=sparsity, acc=stat(records, _acc),
                 auc=stat(records, _auc),
                 bal_acc=stat(records, lambda r: r["metrics"]["recovered"].get("bal_acc")),
                 collapsed=None if None in flags else sum(flags),
                 macs=m("macs"), params=m("params"),
                 mac_reduction=stat(records, _mac_reduction, POSITIVE),
                 latency_b1=stat(records, lambda r: _latency(r, "b1", "pruned_ms"), POSITIVE),
                 latency_b64=stat(records, lambda r: _latency(r, "b64", "pruned_ms"), POSITIVE),
                 speedup_b1=stat(records, lambda r: _latency(r, "b1", "speedup"), POSITIVE),
                 speedup_b64=stat(records, lambda r: _latency(r, "b64", "speedup"), POSITIVE),
                 within_noise=statistics.fmean(noise) if noise else None,
                 score_seconds=m("score_seconds"),
                 preserved=stat(records, lambda r: _agreement(r, "spearman"), CORRELATION),
                 iou=stat(records, lambda r: _agreement(r, "iou_top10")))


def _area(records: list[dict[str, Any]], points: list[Point],
          get: Callable[[dict[str, Any]], float | None] = _acc,
          mean: Callable[[Point], Stat | None] = lambda p: p.acc) -> Stat | None:
    """Mean over seeds of each seed's curve area of ``get`` (accuracy unless told), with its
    95% interval; when some seed lacks a sparsity, the area of the mean curve (no spread);
    None when some point lacks the metric altogether."""
    xs = [p.sparsity for p in points]
    if any(mean(p) is None for p in points):
        return None
    by_seed: dict[int, dict[float, float]] = defaultdict(dict)
    for r in records:
        value = get(r)
        if value is not None:
            by_seed[r["cell"]["seed"]][r["cell"]["sparsity"]] = value
    cells = tuple(sorted(r["cell_hash"] for r in records))
    seeds = tuple(sorted(by_seed))
    if all(sorted(c) == xs for c in by_seed.values()):
        per_seed = [curve_area(list(by_seed[s]), list(by_seed[s].values())) for s in seeds]
        return Stat(mean=statistics.fmean(per_seed),
                    std=statistics.stdev(per_seed) if len(per_seed) > 1 else None,
                    n=len(per_seed), seeds=seeds, cells=cells, ci=t_interval(per_seed, bounds=UNIT))
    return Stat(mean=curve_area(xs, [mean(p).mean for p in points]), std=None, n=len(seeds),
                seeds=seeds, cells=cells)


def _value(metric: str) -> Callable[[dict[str, Any]], float | None]:
    """A record's ``metric`` after the cell's recovery (None where the record lacks it)."""
    return lambda r: r["metrics"]["recovered"].get(metric)


def _points(records: list[dict[str, Any]]) -> list[Point]:
    """One method's points, one per sparsity (whatever the metric)."""
    by_sparsity: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_sparsity[r["cell"]["sparsity"]].append(r)
    return [_point(s, by_sparsity[s]) for s in sorted(by_sparsity)]


def _row(method: str, version: str, records: list[dict[str, Any]],
         sparsities: tuple[float, ...], metric: str = "acc",
         points: list[Point] | None = None) -> Row:
    """One method's row: points per sparsity (``points`` when already computed), dense
    reference, areas (per metric) and within-1-point of ``metric``."""
    points = _points(records) if points is None else points
    dense = _dense(records, metric)
    areas = {m: _area(records, points, _value(m), lambda p, m=m: p.value(m)) for m in METRICS}
    xs = [p.sparsity for p in points]
    ys = [None if p.value(metric) is None else p.value(metric).mean for p in points]
    within = (None if dense is None or None in ys
              else within_one_point(xs, ys, dense.mean))
    flags = [p.collapsed for p in points]
    return Row(method=method, version=version, points=tuple(points), dense=dense,
               area=areas[metric], within_one_point=within,
               complete=tuple(xs) == sparsities and areas[metric] is not None,
               collapsed=None if None in flags else sum(flags),
               preserved=_preserved(records), auc_area=areas["auc"], metric=metric, areas=areas)


def _preserved(records: list[dict[str, Any]]) -> Stat | None:
    """Per seed, the mean over its sparsities of the dense-vs-pruned map Spearman; then the
    mean over seeds with its interval (None when no record measured transparency)."""
    by_seed: dict[int, list[float]] = defaultdict(list)
    for r in records:
        value = _agreement(r, "spearman")
        if value is not None:
            by_seed[r["cell"]["seed"]].append(value)
    if not by_seed:
        return None
    per_seed = [statistics.fmean(by_seed[s]) for s in sorted(by_seed)]
    return Stat(mean=statistics.fmean(per_seed),
                std=statistics.stdev(per_seed) if len(per_seed) > 1 else None, n=len(per_seed),
                seeds=tuple(sorted(by_seed)), cells=tuple(sorted(r["cell_hash"] for r in records)),
                ci=t_interval(per_seed, bounds=CORRELATION))


def summarize_setting(records: list[dict[str, Any]], metric: str = "acc",
                      points: dict[tuple[str, str], list[Point]] | None = None) -> Setting:
    """Rows, ranks and Pareto front of one setting's ok records (any seeds, methods), under
    ``metric`` (``bal_acc``, ``auc`` or ``acc``); ``points``, when given, holds (or is filled
    with) each (method, version)'s points, which do not depend on the metric."""
    if not records:
        raise ValueError("summarize_setting needs at least one record")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    sparsities = tuple(sorted({r["cell"]["sparsity"] for r in records}))
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["cell"]["method"], r["cell"]["method_version"])].append(r)
    points = {} if points is None else points
    for key, rs in groups.items():
        if key not in points:
            points[key] = _points(rs)
    rows = [_row(m, v, rs, sparsities, metric, points[m, v]) for (m, v), rs in sorted(groups.items())]
    ranks = block_ranks({(r.method, r.version): r.area.mean for r in rows if r.complete})
    flat = [(row, p) for row in rows for p in row.points if p.value(metric) is not None]
    front = {(flat[i][0].method, flat[i][0].version, flat[i][1].sparsity)
             for i in pareto_front([(p.macs.mean, p.value(metric).mean) for _, p in flat])}
    rows = [replace(row, rank=ranks.get((row.method, row.version)),
                    pareto=tuple(s for m, v, s in sorted(front) if (m, v) == (row.method, row.version)))
            for row in rows]
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0.0, r.method, r.version))
    denses = {m: _dense(records, m) for m in METRICS}
    chances = {r["metrics"].get("chance") for r in records} - {None}
    return Setting(key=setting_key(records[0]), synthetic=bool(records[0]["dataset"]["synthetic"]),
                   sparsities=sparsities, dense=denses[metric],
                   macs_dense=statistics.fmean(r["metrics"]["macs_dense"] for r in records),
                   rows=tuple(rows), dense_auc=denses["auc"],
                   dense_latency_b64=_mean_or_none(_latency(r, "b64", "dense_ms") for r in records),
                   metric=metric, denses=denses,
                   chance=chances.pop() if len(chances) == 1 else None,
                   majority=majority_share(records[0]))


def majority_share(record: dict[str, Any]) -> float | None:
    """The share of the test set's most frequent class, which a constant model scores as ACC:
    counted from the MedMNIST file when it is here (md5-checked, never downloaded); else, for a
    binary task, solved from the dense model's ACC, sensitivity and specificity
    (ACC = p·sens + (1−p)·spec); else None."""
    d = record["dataset"]
    share = _test_majority(d["flag"], record["cell"]["size"], d["md5"])
    if share is not None or d["task"] != "binary-class":
        return share
    dense = record["metrics"]["dense"]
    sens, spec, acc = dense.get("sens"), dense.get("spec"), dense.get("acc")
    if sens is None or spec is None or abs(sens - spec) < 1e-9:
        return None
    p = min(max((acc - spec) / (sens - spec), 0.0), 1.0)
    return max(p, 1 - p)


@functools.lru_cache(maxsize=16)
def _test_majority(flag: str, size: int, md5: str) -> float | None:
    """The majority-class share of a MedMNIST test split, None without its (verified) file."""
    from bench.core.errors import XPruneError

    try:
        import numpy as np

        from bench.compute import data

        path, actual = data.locate(flag, size, download=False)
        if actual != md5:
            return None
        with np.load(path) as npz:
            labels = npz["test_labels"]
    except (XPruneError, OSError, KeyError, ValueError):
        return None
    if labels.ndim > 1 and labels.shape[1] > 1:  # multi-label: no single majority class
        return None
    _, counts = np.unique(labels.reshape(-1), return_counts=True)
    return float(counts.max() / counts.sum())


def _mean_or_none(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None (None when there are none)."""
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def label(method: str, version: str, labels: dict[tuple[str, str], str] | None = None) -> str:
    """How a (method, version) is named in comparisons: the name, or ``name v2`` when given."""
    return (labels or {}).get((method, version), method)


def compare(settings: Iterable[Setting],
            labels: dict[tuple[str, str], str] | None = None,
            references: tuple[str, ...] = ("random", "magnitude")) -> list[Comparison]:
    """Per granularity and architecture (CNN and transformer settings have different method
    sets): Friedman + Nemenyi over the settings where every compared method has a complete
    curve (curve area of the settings' metric, mean over seeds), and each method's paired
    Wilcoxon test against each of ``references`` over the same settings (Holm-corrected over
    the methods). Methods complete in no more than half of the group's settings are left out
    rather than shrinking every block."""
    from bench.core.spec import architecture

    out = []
    groups: dict[tuple[str, str], list[Setting]] = defaultdict(list)
    for setting in settings:
        groups[(setting.key.granularity, architecture(setting.key.backbone))].append(setting)
    for (gran, arch), group in sorted(groups.items()):
        areas = {s.key: {label(r.method, r.version, labels): r.area.mean for r in s.rows if r.complete}
                 for s in group}
        counts: dict[str, int] = defaultdict(int)
        for row in areas.values():
            for name in row:
                counts[name] += 1
        compared = sorted(n for n, c in counts.items() if 2 * c > len(group))
        blocks = [k for k in areas if set(compared) <= set(areas[k])]
        if not compared or not blocks:
            continue
        table = {k: {n: areas[k][n] for n in compared} for k in blocks}
        per: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for k, row in table.items():
            for name, r in block_ranks(row).items():
                per[name][k.dataset].append(r)
        out.append(Comparison(
            granularity=gran, significance=friedman(table), blocks=tuple(blocks),
            per_dataset={n: {d: statistics.fmean(v) for d, v in sorted(ds.items())}
                         for n, ds in per.items()},
            excluded=tuple(k for k in areas if k not in blocks),
            left_out=tuple(sorted(set(counts) - set(compared))), architecture=arch,
            metric=group[0].metric,
            against={ref: paired_tests(table, ref) for ref in references if ref in compared}))
    return out


def summarize(records: Iterable[dict[str, Any]],
              labels: dict[tuple[str, str], str] | None = None, metric: str = "acc",
              ) -> tuple[list[Setting], list[Comparison], int]:
    """All settings (sorted by key) under ``metric``, the per-granularity comparisons, and how
    many failed records were skipped. The default, ``acc``, keeps older callers' meaning; the
    site and ``benchmarks/leaderboard_summary.py`` summarize every metric (:func:`summarize_all`)."""
    return summarize_all(records, labels, (metric,))[metric]


def summarize_all(records: Iterable[dict[str, Any]],
                  labels: dict[tuple[str, str], str] | None = None,
                  metrics: tuple[str, ...] = METRICS,
                  ) -> dict[str, tuple[list[Setting], list[Comparison], int]]:
    """:func:`summarize` for each metric, the points (which do not depend on it) computed once."""
    groups: dict[SettingKey, list[dict[str, Any]]] = defaultdict(list)
    failed = 0
    for r in records:
        if r["status"] != "ok":
            failed += 1
        else:
            groups[setting_key(r)].append(r)
    points: dict[SettingKey, dict[tuple[str, str], list[Point]]] = defaultdict(dict)
    out = {}
    for metric in metrics:
        settings = [summarize_setting(groups[k], metric, points[k]) for k in sorted(groups)]
        out[metric] = (settings, compare(settings, labels), failed)
    return out
