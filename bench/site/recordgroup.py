"""Record pages grouped: one page per method in a setting (its sparsities x seeds), instead of
one near-identical page per record. What every record of the group shares is printed once;
what differs is a table with one column per record, whose header carries the record's anchor
(``records/<method>/<setting>.html#<cell hash>``); fields that vary with the seed only (the
dense model, the baseline) or with the sparsity only (the pruned architecture's size and
latency) get a smaller table with a column per seed or per sparsity.

Each record's fields come from :func:`bench.site.recordpage.record_context` (the words and
formatted numbers of one record); this module only lays them out side by side.
"""

from __future__ import annotations

from typing import Any


def fields(ctx: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One record's page context as (section, label, text) triples, in reading order."""
    out: list[tuple[str, str, str]] = [("Cell", k, v) for k, v in ctx["cell"]]
    d = ctx["dataset"]
    out.append(("Cell", "dataset task", f"{d['task']}, {d['n_classes']} classes"
                + (" (synthetic data)" if d.get("synthetic") else "")))
    for s in ctx["scores"]:
        for stage, v in zip(("dense", "pruned, before recovery", "after recovery"), s["cells"]):
            out.append(("Task metrics", f"{s['label']}, {stage}", v))
    if ctx["collapse"]:
        out.append(("Task metrics", "collapsed (balanced accuracy within 0.02 of chance)",
                    ctx["collapse"]))
    out += [("Cost", k, v) for k, v in ctx["cost"]]
    lat = ctx["latency"]
    if lat:
        out.append(("Measured latency", "hardware", lat["hardware"]))
        for t in lat["rows"]:
            out += [("Measured latency", f"{t['batch']}, dense (ms)", t["dense"]),
                    ("Measured latency", f"{t['batch']}, pruned (ms)", t["pruned"]),
                    ("Measured latency", f"{t['batch']}, speed-up", t["speedup"]),
                    ("Measured latency", f"{t['batch']}, within noise", t["noise"]),
                    ("Measured latency", f"{t['batch']}, repeats", t["repeats"])]
    probe = ctx.get("probe")
    if probe:
        out.append(("Explanation preservation", "probe",
                    f"{probe['images']} {probe['split']} images, seed {probe['seed']}"))
    for e in ctx["transparency"]:
        out.append(("Explanation preservation", f"{e['name']}: explainer", e["description"]))
        out += [("Explanation preservation", f"{e['name']}: {k}", v) for k, v in e["rows"]]
    m = ctx["method"]
    out += [("Method", "name and version", f"{m['name']} version {m['version']} ({m['family']})"),
            ("Method", "rule and aggregation", m["description"]),
            ("Method", "soundness", m.get("soundness") or "not checked")]
    out += [("Time and provenance", k, v) for k, v in ctx["times"] + ctx["provenance"] + ctx["other"]]
    return out


def group_context(title: str, contexts: list[dict[str, Any]], links: dict[str, str],
                  raw: list[dict[str, str]]) -> dict[str, Any]:
    """A group page: ``contexts`` (one per record, in column order), the fields they all share
    per section, and a table of the fields that differ (one column per record); ``raw`` gives
    each record's published JSON file (a link, or its path as text)."""
    per = [dict(((s, k), v) for s, k, v in fields(c)) for c in contexts]
    order: list[tuple[str, str]] = []
    for c in contexts:
        for s, k, _ in fields(c):
            if (s, k) not in order:
                order.append((s, k))
    shared: dict[str, list[tuple[str, str]]] = {}
    by: dict[str, list[dict[str, Any]]] = {"seed": [], "sparsity": [], "record": []}
    seeds = list(dict.fromkeys(c["seed"] for c in contexts))
    sparsities = list(dict.fromkeys(c["sparsity"] for c in contexts))
    for s, k in order:
        values = [p.get((s, k), "—") for p in per]
        if len(set(values)) == 1:
            shared.setdefault(s, []).append((k, values[0]))
            continue
        for axis, keys in (("seed", seeds), ("sparsity", sparsities)):
            groups = {key: {v for c, v in zip(contexts, values) if c[axis] == key} for key in keys}
            if len(keys) < len(contexts) and all(len(g) == 1 for g in groups.values()):
                by[axis].append({"section": s, "label": k, "cells": [next(iter(groups[key])) for key in keys]})
                break
        else:
            by["record"].append({"section": s, "label": k, "cells": values})
    columns = [{"id": c["hash"], "label": f"sparsity {c['sparsity']} · seed {c['seed']}",
                "raw": raw_file} for c, raw_file in zip(contexts, raw)]
    folders = sorted({r["text"].rsplit("/", 1)[0] + "/" for r in raw})
    tables = [{"title": "What differs between the records", "what": "one column per record",
               "columns": columns, "sections": _sections(by["record"])}]
    if by["sparsity"]:
        tables.append({"title": "What depends on the sparsity only", "what": "the same for every seed",
                       "columns": [{"id": "", "label": f"sparsity {x}", "raw": None} for x in sparsities],
                       "sections": _sections(by["sparsity"])})
    if by["seed"]:
        tables.append({"title": "What depends on the seed only", "what": "the seed's baseline and "
                       "scores, the same at every sparsity",
                       "columns": [{"id": "", "label": f"seed {x}", "raw": None} for x in seeds],
                       "sections": _sections(by["seed"])})
    for t in tables:
        t["span"] = len(t["columns"]) + 1
    return {"title": title, "root": "../../", "records": len(contexts), "tables": tables,
            "folder": ", ".join(folders),
            "shared": [{"name": s, "rows": rows} for s, rows in shared.items()], **links}


def _sections(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped under their section headings, in order."""
    sections: list[dict[str, Any]] = []
    for row in rows:
        if not sections or sections[-1]["name"] != row["section"]:
            sections.append({"name": row["section"], "rows": []})
        sections[-1]["rows"].append(row)
    return sections
