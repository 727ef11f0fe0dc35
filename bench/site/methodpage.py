"""Method pages of the leaderboard: what a method is (rule and aggregation, reference as links,
its plugin file, the soundness verdict, heatmaps), how it compares per granularity, and its
results in every setting (a filterable table with downloads).

References are free text; DOIs (``doi:10.…`` or ``https://doi.org/10.…``), arXiv identifiers
(``arXiv:2408.12568``) and other ``https://`` addresses in them become links. Nothing else
is ever linked, so a hostile reference (``javascript:…``) stays text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.results.summary import METRIC_NAMES, PRIMARY, Comparison, Setting
from bench.site.pages import html, results_table, switcher
from bench.site.svg import Style, symbols
from bench.site.tables import Table

_IDS = re.compile(
    r"(?P<doi>(?:doi:\s*|https?://(?:dx\.)?doi\.org/)(?P<d>10\.\d{4,9}/[^\s;,]+[^\s;,.)]))"
    r"|(?P<arxiv>(?:arXiv:\s*|https?://arxiv\.org/abs/)(?P<a>\d{4}\.\d{4,5}(?:v\d+)?))"
    r"|(?P<url>https://[^\s;,]+[^\s;,.)])", re.IGNORECASE)


def reference_parts(reference: str) -> list[dict[str, str]]:
    """The reference as text segments, identifiers turned into ``https://doi.org/…``,
    ``https://arxiv.org/abs/…`` or their own ``https://`` address."""
    parts, at = [], 0
    for m in _IDS.finditer(reference):
        if m.start() > at:
            parts.append({"text": reference[at:m.start()], "href": ""})
        href = (f"https://doi.org/{m['d']}" if m["doi"] else
                f"https://arxiv.org/abs/{m['a']}" if m["arxiv"] else m["url"])
        parts.append({"text": m.group(0), "href": href})
        at = m.end()
    if at < len(reference):
        parts.append({"text": reference[at:], "href": ""})
    return parts


def source_href(source: str, site: Path, repo: Path) -> str:
    """A relative link from a method page to its plugin file, when the site is rendered inside
    the repository that holds the file (the default ``leaderboard/site``); else ""."""
    if not source or Path(source).is_absolute() or ".." in Path(source).parts:
        return ""
    site, repo = site.resolve(), repo.resolve()
    target = repo / source
    if not target.is_file() or not site.is_relative_to(repo):
        return ""
    depth = len((site / "methods").relative_to(repo).parts)
    return "../" * depth + Path(source).as_posix()


def soundness(meta: dict[str, Any]) -> dict[str, Any]:
    """The soundness verdict as the page shows it: pass, a warning, or not checked."""
    verdict = meta.get("soundness")
    if verdict is None:
        return {"text": "not checked (record from before the soundness stage)", "warning": False}
    return {"text": verdict, "warning": verdict != "pass"}


def comparisons_of(label: str, comparisons: list[Comparison]) -> list[dict[str, Any]]:
    """How the method fares in each granularity's Friedman/Nemenyi comparison."""
    out = []
    for c in comparisons:
        sig = c.significance
        if label not in sig.methods:
            if label in c.left_out:
                out.append({"granularity": c.granularity, "text": "not compared: complete in too "
                            "few settings"})
            continue
        place = sig.methods.index(label) + 1
        mine = sig.mean_ranks[label]
        better = [m for m in sig.methods if sig.differs(label, m) and sig.mean_ranks[m] > mine]
        worse = [m for m in sig.methods if sig.differs(label, m) and sig.mean_ranks[m] < mine]
        against = "; ".join(
            f"against {ref}: {t.verdict} ({100 * t.mean_diff:+.1f} points, Holm p "
            f"{'n/a' if t.p_holm is None else f'{t.p_holm:.2g}'})"
            for ref, tests in c.against.items() if (t := tests.get(label)) is not None)
        out.append({"granularity": f"{c.granularity}, {c.architecture}",
                    "text": f"mean rank {sig.mean_ranks[label]:.2f} ({place} of {len(sig.methods)}) "
                            f"over {sig.blocks} settings; significantly better than: "
                            f"{', '.join(better) or 'none'}; significantly worse than: "
                            f"{', '.join(worse) or 'none'}" + (f"; {against}" if against else "")})
    return out


def method_context(method: str, metas: list[dict], settings: list[Setting], names: dict,
                   comparisons: list[Comparison], heatmaps: list[tuple[str, str]],
                   site: Path, repo: Path,
                   styles: dict[str, Style] | None = None) -> tuple[dict[str, Any], list[Table]]:
    """A method's metadata (per version, with the colour and marker it has in every plot),
    comparisons, heatmaps and results table."""
    pairs = [(s, r) for s in settings for r in s.rows if r.method == method]
    metric = settings[0].metric if settings else PRIMARY
    table = results_table(pairs, names, "results", f"data/methods/{method}", with_dataset=True,
                          with_method=False, metric=metric)
    versions = []
    for m in metas:
        label = names[method, m["version"]]
        style = (styles or {}).get(label)
        versions.append({**m, "label": label, "reference_parts": reference_parts(m["reference"]),
                         "swatch": {"symbol": style.symbol} if style else None,
                         "source_href": source_href(m.get("source", ""), site, repo),
                         "soundness": soundness(m),
                         "applies_to": ("every backbone" if m.get("architectures", "any") == "any"
                                        else f"{m['architectures'].replace(',', ', ')} backbones "
                                        "only (not applicable to the others: never run there)"),
                         "granularities": ", ".join(sorted({s.key.granularity for s, r in pairs
                                                            if r.version == m["version"]})),
                         "compared": comparisons_of(label, comparisons)})
    mine = {v["label"]: styles[v["label"]] for v in versions if styles and v["label"] in styles}
    return {"title": f"method {method}", "root": "../", "method": method, "versions": versions,
            "symbols": symbols(mine),
            "metric": METRIC_NAMES[metric], "switch": switcher(method, metric),
            "results": table.context("../"),
            "heatmaps": [{"src": src, "caption": caption} for src, caption in heatmaps]}, [table]


def methods_overview(metas: dict[tuple[str, str], dict], names: dict,
                     settings: list[Setting]) -> list[dict[str, Any]]:
    """The index's list of methods: name, family, granularities, soundness, reference."""
    grans: dict[tuple[str, str], set[str]] = {}
    for s in settings:
        for r in s.rows:
            grans.setdefault((r.method, r.version), set()).add(s.key.granularity)
    metric = settings[0].metric if settings else PRIMARY
    return [{"name": names[k], "href": html(f"methods/{k[0]}", metric), "family": m["family"],
             "granularities": ", ".join(sorted(grans.get(k, ()))), "soundness": soundness(m),
             "reference_parts": reference_parts(m["reference"])} for k, m in sorted(metas.items())]
