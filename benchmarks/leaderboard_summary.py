"""What the published leaderboard says, in numbers: the tables behind README's text.

Reads the records under ``reports/`` (the leaderboard's only input) and prints, for each
metric (balanced accuracy, the primary one, then AUC and ACC) and per granularity and
architecture, the Friedman / Nemenyi comparison of curve areas (mean ranks, p-value, critical
difference, the pairs the post-hoc test separates) with each method's paired Wilcoxon
signed-rank test against random and magnitude over the same settings (``bench.results.summary.compare``;
Holm-corrected over the methods), then every method's mean explanation preservation
(Spearman of dense vs pruned reference-LRP maps) and its paired tests against the references.

    python benchmarks/leaderboard_summary.py [--reports reports] [--metric bal_acc|auc|acc]
        [--protocol N] [--max-sparsity S]

Settings computed by different engine protocols are different settings (their own baselines
and kernels); ``--protocol 3`` restricts everything to the records of one protocol.
``--max-sparsity 0.3`` recomputes every curve area over the sparsities up to 0.3 only: the
range where the pruned models still work, for a reader who distrusts areas that include
collapsed points.
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
    parser.add_argument("--metric", choices=("all", "bal_acc", "auc", "acc"), default="all",
                        help="the metric whose curve areas are compared (default: each in turn)")
    parser.add_argument("--protocol", type=int, default=None,
                        help="only the records of this engine protocol (default: all)")
    parser.add_argument("--max-sparsity", type=float, default=None,
                        help="only the cells at or below this sparsity (default: all)")
    args = parser.parse_args()

    from bench.results import records
    from bench.results.summary import METRIC_NAMES, METRICS, PRIMARY, summarize_all

    recs = [r for r in records.iter_records(args.reports)
            if (args.protocol is None or records.protocol(r) == args.protocol)
            and (args.max_sparsity is None or r["cell"]["sparsity"] <= args.max_sparsity + 1e-9)]
    counts = defaultdict(int)
    for r in recs:
        counts[records.protocol(r)] += 1
    print("records per protocol: " + ", ".join(f"{p}: {n}" for p, n in sorted(counts.items())) + "\n")
    chosen = METRICS if args.metric == "all" else (args.metric,)
    summaries = summarize_all(recs, metrics=chosen)
    for metric in chosen:
        settings, comparisons, failed = summaries[metric]
        primary = " (the primary, ranking metric)" if metric == PRIMARY else ""
        print(f"# Curve area of {METRIC_NAMES[metric]}{primary}\n")
        print(f"{len(recs) - failed} ok records, {failed} failed, {len(settings)} settings\n")
        report(settings, comparisons)
    preservation(settings)  # the same under every metric: printed once
    collapse(recs)
    kept(recs)
    return 0


def kept(recs, within: float = 0.02) -> None:
    """Per granularity and sparsity: in how many settings the best method's seed-mean balanced
    accuracy (the best of all methods: an optimistic, selected figure) and random's stay within
    ``within`` of the dense model's: where pruning still works."""
    from bench.core.spec import architecture

    values, dense = defaultdict(list), defaultdict(list)
    for r in recs:
        if r["status"] != "ok":
            continue
        c, m = r["cell"], r["metrics"]
        setting = (c["granularity"], architecture(c["backbone"]), c["dataset"], c["backbone"],
                   c["scope"], c["recovery"])
        values[(setting, c["sparsity"], c["method"])].append(m["recovered"]["bal_acc"])
        dense[setting].append(m["dense"]["bal_acc"])
    print(f"## Settings that keep balanced accuracy within {100 * within:.0f} points of dense "
          "(seed means), per sparsity: by the best method / by random")
    means = defaultdict(dict)  # (setting, sparsity) -> method -> seed mean
    for (setting, sparsity, method), v in values.items():
        means[(setting, sparsity)][method] = statistics.fmean(v)
    for group in sorted({s[:2] for s in dense}):
        parts = []
        for sparsity in sorted({sp for (s, sp) in means if s[:2] == group}):
            best = rand = total = 0
            for (s, sp), by_method in means.items():
                if sp != sparsity or s[:2] != group:
                    continue
                floor = statistics.fmean(dense[s]) - within
                total += 1
                best += max(by_method.values()) >= floor
                rand += by_method.get("random", -1.0) >= floor
            parts.append(f"{sparsity:g}: {best}/{rand} of {total}")
        print(f"- {' / '.join(group)}: " + ", ".join(parts))
    print()


def collapse(recs) -> None:
    """Per granularity, architecture and recovery: each method's share of collapsed cells
    (``metrics.collapsed``: balanced accuracy within 0.02 of chance), where ACC only reads the
    class mix."""
    from bench.core.spec import architecture

    counts = defaultdict(lambda: [0, 0])
    for r in recs:
        if r["status"] != "ok" or r["metrics"].get("collapsed") is None:
            continue
        c = r["cell"]
        key = (c["granularity"], architecture(c["backbone"]), c["recovery"], c["method"])
        counts[key][0] += bool(r["metrics"]["collapsed"])
        counts[key][1] += 1
    groups = sorted({k[:3] for k in counts})
    print("## Collapsed cells (balanced accuracy within 0.02 of chance), share per method")
    for group in groups:
        shares = sorted(((100 * n / total, m) for (*g, m), (n, total) in counts.items()
                         if tuple(g) == group), reverse=True)
        print(f"- {' / '.join(group)}: " + ", ".join(f"{m} {share:.0f}%" for share, m in shares))
    print()


def report(settings, comparisons) -> None:
    """Friedman / Nemenyi, then each method against random and magnitude, per granularity and
    architecture (CNN and transformer settings have different method sets and LRP lenses)."""
    for c in comparisons:
        sig = c.significance
        print(f"## {c.granularity}, {c.architecture}: {sig.blocks} settings compared"
              + (f", {len(c.excluded)} excluded (incomplete)" if c.excluded else ""))
        if sig.p_value is not None:
            print(f"Friedman chi2 = {sig.statistic:.1f}, p = {sig.p_value:.2g}; Nemenyi CD = "
                  f"{sig.critical_difference:.2f}")
        print("| method | mean rank | separated (Nemenyi, alpha 0.05) from | area - random "
              "| area - magnitude |\n|---|---|---|---|---|")
        for m in sig.methods:
            beaten = [o for o in sig.methods if o != m and sig.differs(m, o)]
            cells = []
            for ref in REFERENCES:
                t = c.against.get(ref, {}).get(m)
                if t is None:
                    cells.append("-")
                    continue
                p = "n/a" if t.p_holm is None else f"{t.p_holm:.2g}"
                cells.append(f"{100 * t.mean_diff:+.2f} pts ({100 * t.share_higher:.0f}%, "
                             f"n={t.n}, Holm p={p})")
            print(f"| {m} | {sig.mean_ranks[m]:.2f} | {', '.join(beaten) or '-'} | "
                  + " | ".join(cells) + " |")
        print()
    leaders(settings)


def leaders(settings) -> None:
    """How many settings name one best method, how many a tie (95% intervals overlap), and
    how many have a first curve area at or below a constant model's score (collapsed)."""
    single = sum(1 for s in settings if len(s.leaders) == 1)
    floor = sum(1 for s in settings if s.best and s.at_floor(s.best[0].area.mean))
    sizes = sorted(len(s.leaders) for s in settings if len(s.leaders) > 1)
    median = sizes[len(sizes) // 2] if sizes else 0
    print(f"Best method per setting: one method separated in {single} of {len(settings)} "
          f"settings, tied in {len(settings) - single} (median {median} methods not separated "
          f"by their 95% intervals); first curve area at or below a constant model in {floor}\n")


def preservation(settings) -> None:
    """Each method's mean explanation preservation and its paired tests against the references."""
    from bench.core.spec import architecture

    by_gran = defaultdict(list)
    for s in settings:
        by_gran[(s.key.granularity, architecture(s.key.backbone))].append(s)
    for (gran, arch), group in sorted(by_gran.items()):
        methods = sorted({r.method for s in group for r in s.rows})
        print(f"## {gran}, {arch}: explanation preservation against random and magnitude "
              "(mean difference, share of settings where the method is higher, n, Holm p)")
        print("| method | preservation | preservation - random | preservation - magnitude |")
        print("|---|---|---|---|")
        results = {}
        for ref in REFERENCES:
            def value(r):
                return r.preserved and r.preserved.mean
            raw = {m: paired(group, m, ref, value) for m in methods if m != ref}
            adjusted = holm({m: r[3] for m, r in raw.items() if r[3] is not None})
            results[ref] = {m: (*r[:3], adjusted.get(m)) for m, r in raw.items()}
        for m in methods:
            pres = [r.preserved.mean for s in group for r in s.rows
                    if r.method == m and r.preserved is not None]
            cells = []
            for ref in REFERENCES:
                if m == ref or results[ref][m][2] == 0:
                    cells.append("-")
                    continue
                mean, share, n, p = results[ref][m]
                p_text = "n/a" if p is None else f"{p:.2g}"
                cells.append(f"{mean:+.2f} ({100 * share:.0f}%, n={n}, p={p_text})")
            preserved = f"{statistics.fmean(pres):.2f}" if pres else "-"
            print(f"| {m} | {preserved} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    sys.exit(main())
