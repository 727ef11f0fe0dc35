"""Statistics behind the leaderboard: intervals over seeds, and whether method ranks differ.

* :func:`t_interval`: the 95% Student-t interval of a mean over seeds (none below 2 seeds),
  clipped to the range of the quantity.
* :func:`friedman`: the Friedman test over blocks (settings) x methods with the Nemenyi
  post-hoc test (scikit-posthocs) and the Nemenyi critical difference of mean ranks
  (Demšar 2006), the ingredients of a critical-difference diagram.
* :func:`paired_tests`: each method against one reference method (random, magnitude) over
  the same blocks: mean difference, share of blocks where it is higher, and the two-sided
  Wilcoxon signed-rank p-value, Holm-corrected over the methods.

Higher values are better everywhere; rank 1 is the best method of a block, ties share the
mean of their ranks.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

ALPHA = 0.05


UNIT = (0.0, 1.0)  # accuracies, AUCs, curve areas, overlaps
CORRELATION = (-1.0, 1.0)
POSITIVE = (0.0, math.inf)  # latencies, speed-ups, MAC reductions, counts


def t_interval(values: Sequence[float], level: float = 0.95,
               bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, float] | None:
    """Mean ± t_{(1+level)/2, n-1} · s / sqrt(n), clipped to the values the quantity can
    take (``bounds``: with 3 seeds an accuracy's interval can reach past 0 or 1); None with
    fewer than two values."""
    if len(values) < 2:
        return None
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half = _t_quantile((1 + level) / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return max(bounds[0], mean - half), min(bounds[1], mean + half)


@functools.lru_cache(maxsize=64)
def _t_quantile(q: float, df: int) -> float:
    """Student-t quantile (scipy), cached: the site asks for the same few tens of thousands of times."""
    from scipy.stats import t

    return float(t.ppf(q, df))


@dataclass(frozen=True)
class Significance:
    """Friedman + Nemenyi over ``blocks`` settings for ``methods`` (sorted by mean rank)."""

    methods: tuple[str, ...]
    blocks: int
    mean_ranks: dict[str, float]
    statistic: float | None = None  # Friedman chi-square; None below 3 methods or 2 blocks
    p_value: float | None = None
    pairwise_p: dict[str, dict[str, float]] = field(default_factory=dict)  # Nemenyi p-values
    critical_difference: float | None = None
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        """Whether the Friedman test rejects "all methods rank alike" at ``alpha``."""
        return self.p_value is not None and self.p_value < self.alpha

    def differs(self, a: str, b: str) -> bool:
        """Whether the Nemenyi test separates two methods at ``alpha`` (after a significant Friedman)."""
        return self.significant and self.pairwise_p.get(a, {}).get(b, 1.0) < self.alpha


def block_ranks(values: Mapping[str, float]) -> dict[str, float]:
    """Rank 1 for the highest value; exact ties share the mean of their ranks."""
    ordered = sorted(values.values(), reverse=True)
    first = {v: ordered.index(v) + 1 for v in ordered}
    count = {v: ordered.count(v) for v in ordered}
    return {k: first[v] + (count[v] - 1) / 2 for k, v in values.items()}


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> float:
    """Critical difference of mean ranks: q_alpha / sqrt(2) * sqrt(k (k + 1) / (6 n))."""
    from scipy.stats import studentized_range

    q = float(studentized_range.ppf(1 - alpha, k, math.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6 * n))


def friedman(table: Mapping[Hashable, Mapping[str, float]], alpha: float = ALPHA) -> Significance:
    """Test a complete table ``{block: {method: value}}`` (every block has every method)."""
    blocks = list(table)
    methods = sorted({m for row in table.values() for m in row})
    if any(set(table[b]) != set(methods) for b in blocks):
        raise ValueError("friedman needs a complete table: every block must have every method")
    ranks = [block_ranks(table[b]) for b in blocks]
    mean = {m: statistics.fmean(r[m] for r in ranks) for m in methods} if blocks else {}
    order = tuple(sorted(methods, key=lambda m: (mean[m], m)))
    k, n = len(methods), len(blocks)
    if k < 3 or n < 2:
        return Significance(order, n, mean, alpha=alpha)
    import numpy as np
    import scikit_posthocs as sp
    from scipy.stats import friedmanchisquare

    matrix = np.array([[table[b][m] for m in methods] for b in blocks], dtype=float)
    stat, p = friedmanchisquare(*matrix.T)
    nemenyi = sp.posthoc_nemenyi_friedman(matrix)
    pairwise = {a: {b: float(nemenyi.iloc[i, j]) for j, b in enumerate(methods) if b != a}
                for i, a in enumerate(methods)}
    p = float(p) if math.isfinite(p) else 1.0  # all blocks tie every method: no evidence
    stat = float(stat) if math.isfinite(stat) else 0.0
    return Significance(order, n, mean, stat, p, pairwise, nemenyi_cd(k, n, alpha), alpha)


@dataclass(frozen=True)
class Paired:
    """One method against a reference over ``n`` blocks: mean and share of positive
    differences, the Wilcoxon signed-rank p-value (None below 6 blocks or when every
    difference is 0) and its Holm-adjusted value over the methods tested against the reference."""

    mean_diff: float
    share_higher: float
    n: int
    p_value: float | None
    p_holm: float | None
    alpha: float = ALPHA

    @property
    def verdict(self) -> str:
        """``higher``, ``lower`` (Holm p below alpha) or ``not separated``."""
        if self.p_holm is None or self.p_holm >= self.alpha:
            return "not separated"
        return "higher" if self.mean_diff > 0 else "lower"


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    order = sorted(pvalues, key=lambda k: (pvalues[k], k))
    out, running = {}, 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * pvalues[k]))
        out[k] = running
    return out


def paired_tests(table: Mapping[Hashable, Mapping[str, float]], reference: str,
                 alpha: float = ALPHA) -> dict[str, Paired]:
    """Every method of a complete table against ``reference`` over its blocks."""
    from scipy.stats import wilcoxon

    methods = sorted({m for row in table.values() for m in row} - {reference})
    raw = {}
    for m in methods:
        diffs = [row[m] - row[reference] for row in table.values() if m in row and reference in row]
        p = (float(wilcoxon(diffs).pvalue) if len(diffs) >= 6 and any(d != 0 for d in diffs)
             else None)
        raw[m] = (statistics.fmean(diffs) if diffs else 0.0,
                  sum(d > 0 for d in diffs) / len(diffs) if diffs else 0.0, len(diffs), p)
    adjusted = holm({m: r[3] for m, r in raw.items() if r[3] is not None})
    return {m: Paired(*r, adjusted.get(m), alpha) for m, r in raw.items()}
