"""What the published leaderboard says, in numbers: the tables behind README's text.

Reads the records under ``reports/`` (the leaderboard's only input) and prints, per
granularity, the Friedman / Nemenyi comparison of curve areas (mean ranks, p-value, critical
difference, the pairs the post-hoc test separates), then for every method its mean
explanation preservation (Spearman of dense vs pruned reference-LRP maps), and paired
Wilcoxon signed-rank tests over settings of each method against random and magnitude, on
curve area and on explanation preservation (scipy; Holm-corrected over the methods), CNN and
transformer settings apart.

    python benchmarks/leaderboard_summary.py [--reports reports]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

REFERENCES = ("random", "magnitude")


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (statsmodels' multipletests)."""
    from statsmodels.stats.multitest import multipletests

    names = sorted(pvalues)
    if not names:
        return {}
    adjusted = multipletests([pvalues[n] for n in names], method="holm")[1]
    return dict(zip(names, (float(p) for p in adjusted)))


def paired(settings, method: str, reference: str, value) -> tuple[float, float, int, float | None]:
    """Mean difference, share of settings where ``method`` is higher, count, Wilcoxon p."""
    from scipy.stats import wilcoxon

    diffs = []
    for s in settings:
        rows = {r.method: r for r in s.rows if r.complete}
        if method in rows and reference in rows:
            a, b = value(rows[method]), value(rows[reference])
            if a is not None and b is not None:
                diffs.append(a - b)
    if not diffs:
        return 0.0, 0.0, 0, None
    p = float(wilcoxon(diffs).pvalue) if len(diffs) >= 6 and any(diffs) else None
    return statistics.fmean(diffs), sum(d > 0 for d in diffs) / len(diffs), len(diffs), p


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    args = parser.parse_args()

    from bench import records
    from bench.spec import architecture
    from bench.summary import summarize

    recs = list(records.iter_records(args.reports))
    settings, comparisons, failed = summarize(recs)
    print(f"{len(recs) - failed} ok records, {failed} failed, {len(settings)} settings\n")
    for c in comparisons:
        sig = c.significance
        print(f"## {c.granularity}: {sig.blocks} settings compared"
              + (f", {len(c.excluded)} excluded (incomplete)" if c.excluded else ""))
        if sig.p_value is not None:
            print(f"Friedman chi2 = {sig.statistic:.1f}, p = {sig.p_value:.2g}; Nemenyi CD = "
                  f"{sig.critical_difference:.2f}")
        print("| method | mean rank | separated (Nemenyi, alpha 0.05) from |\n|---|---|---|")
        for m in sig.methods:
            beaten = [o for o in sig.methods if o != m and sig.differs(m, o)]
            print(f"| {m} | {sig.mean_ranks[m]:.2f} | {', '.join(beaten) or '-'} |")
        print()

    # CNN and transformer settings apart: their method sets and LRP lenses differ
    by_gran = defaultdict(list)
    for s in settings:
        by_gran[(s.key.granularity, architecture(s.key.backbone))].append(s)
    for (gran, arch), group in sorted(by_gran.items()):
        methods = sorted({r.method for s in group for r in s.rows})
        print(f"## {gran}, {arch} settings: each method against random and magnitude over "
              "settings (mean difference, share of settings where the method is higher, n, "
              "Holm p)")
        print("| method | preservation | area - random | area - magnitude | "
              "preservation - random | preservation - magnitude |")
        print("|---|---|---|---|---|---|")
        results = {}
        for ref in REFERENCES:
            for what, value in (("area", lambda r: r.area.mean),
                                ("preservation", lambda r: r.preserved and r.preserved.mean)):
                raw = {m: paired(group, m, ref, value) for m in methods if m != ref}
                adjusted = holm({m: r[3] for m, r in raw.items() if r[3] is not None})
                results[(ref, what)] = {m: (*r[:3], adjusted.get(m)) for m, r in raw.items()}
        for m in methods:
            pres = [r.preserved.mean for s in group for r in s.rows
                    if r.method == m and r.preserved is not None]
            cells = []
            for what in ("area", "preservation"):
                for ref in REFERENCES:
                    if m == ref:
                        cells.append("-")
                        continue
                    mean, share, n, p = results[(ref, what)][m]
                    if n == 0:
                        cells.append("-")
                        continue
                    scale = 100 if what == "area" else 1
                    unit = " pts" if what == "area" else ""
                    p_text = "n/a" if p is None else f"{p:.2g}"
                    cells.append(f"{scale * mean:+.2f}{unit} ({100 * share:.0f}%, n={n}, p={p_text})")
            preserved = f"{statistics.fmean(pres):.2f}" if pres else "-"
            print(f"| {m} | {preserved} | " + " | ".join(cells) + " |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
