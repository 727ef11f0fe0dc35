"""A record's own page: the cell, its task metrics before and after recovery, cost, measured
latency with its spread and interval, explanation preservation and provenance, in words and
formatted numbers (:mod:`bench.site.recordgroup` lays the records of a method in a setting side
by side on one page; the published JSON stays in ``reports/``, linked from there).

Schema 1 records have no clinical metrics, collapse flag or interleaved latency; what a
record lacks is left out. The task scores it lists are the schema's
(``bench.results.records.score_fields``), and every metric field the page has no section for
is listed as it is, so a field added to the schema, or a newer record's, never loses a
number here.
"""

from __future__ import annotations

from typing import Any

from bench.results import records
from bench.results.summary import preservation_explainer
from bench.site.numbers import g2, g3, pct, si

# How each task score is worded and formatted; one the schema adds is shown by its name.
SCORE_LABELS = {"acc": ("accuracy (%)", pct), "auc": ("AUC (%)", pct),
                "bal_acc": ("balanced accuracy (%)", pct), "sens": ("sensitivity (%)", pct),
                "spec": ("specificity (%)", pct), "ece": ("expected calibration error", g3)}
# The metric fields this page has a section for (scores, cost, collapse, latency,
# transparency, times); any other metric is listed as it is.
SHOWN = {"dense", "pruned", "recovered", "params_dense", "params", "macs_dense", "macs",
         "compression", "speedup", "mac_reduction", "achieved_sparsity", "tie_share", "chance",
         "collapsed", "latency", "latency_ms", "transparency", "score_seconds", "prune_seconds",
         "recover_seconds"}
AGREEMENT = (("spearman", "Spearman of dense vs pruned maps", g2),
             ("iou_top10", "top-10% pixel overlap (IoU)", g2),
             ("deletion_dense", "deletion area, dense model", g3),
             ("deletion_pruned", "deletion area, pruned model", g3))


def _fmt(value: Any, fmt: Any) -> str:
    return "—" if value is None else fmt(value)


def _ms(value: float | None, iqr: list[float] | None) -> str:
    """Milliseconds with the interquartile range of the repeats."""
    if value is None:
        return "—"
    return f"{value:.3g}" + (f" [IQR {iqr[0]:.3g}–{iqr[1]:.3g}]" if iqr else "")


def _timing(name: str, t: dict[str, Any]) -> dict[str, str]:
    ci = t.get("speedup_ci")
    return {"batch": name, "dense": _ms(t["dense_ms"], t.get("dense_iqr_ms")),
            "pruned": _ms(t["pruned_ms"], t.get("pruned_iqr_ms")),
            "speedup": f"{t['speedup']:.3g}" + (f" [95% CI {ci[0]:.3g}–{ci[1]:.3g}]" if ci else ""),
            "noise": "yes: the interval contains 1" if t.get("within_noise") else "no",
            "repeats": str(t.get("repeats", "—"))}


def latency(m: dict[str, Any]) -> dict[str, Any] | None:
    """Latency blocks (CPU, and GPU when measured) as table rows; schema 1's plain numbers."""
    if "latency" in m:
        lat = m["latency"]
        rows = [_timing(f"CPU batch {b[1:]}", lat[b]) for b in ("b1", "b64")]
        gpu = lat.get("gpu")
        if gpu:
            rows += [_timing(f"GPU batch {b[1:]}", gpu[b]) for b in ("b1", "b64")]
        hardware = lat["hardware"] + ("" if "thread" in lat["hardware"] else
                                      f", {lat.get('threads', '?')} thread(s)")
        hardware += f"; GPU: {gpu['hardware']}" if gpu else ""
        return {"hardware": hardware, "rows": rows,
                "note": "Dense and pruned models timed in interleaved repeats; [IQR] is the spread "
                        "of the repeats, the speed-up's interval its 95% interval."}
    old = m.get("latency_ms")
    if not old:
        return None
    rows = [{"batch": f"CPU batch {b}", "dense": _ms(old.get(f"dense_b{b}"), None),
             "pruned": _ms(old.get(f"pruned_b{b}"), None), "speedup": "—", "noise": "—",
             "repeats": "—"} for b in (1, 64)]
    return {"hardware": "hardware not recorded (schema 1)", "rows": rows,
            "note": "Medians only: schema 1 kept no spread and no measured speed-up."}


def transparency(m: dict[str, Any]) -> list[dict[str, Any]]:
    """Per reference explainer: its description and agreement of dense vs pruned maps."""
    block = m.get("transparency") or {}
    out = []
    reference = preservation_explainer(block)
    explainers = sorted((block.get("explainers") or {}).items(),
                        key=lambda kv: (kv[0] != reference, kv[0]))  # the reference first
    for name, description in explainers:
        values = block.get(name) or {}
        out.append({"name": name, "description": description,
                    "rows": [(label, _fmt(values.get(k), f)) for k, label, f in AGREEMENT]})
    return out


def readable(value: Any) -> str:
    """A record value in words: yes/no for booleans, "none" for null, ``key value`` pairs for a
    mapping and commas for a list (never a raw dict or Python's ``True``)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{str(k).replace('_', ' ')} {readable(v)}" for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(v) for v in value)
    return str(value)


def _device(p: dict[str, Any]) -> list[tuple[str, str]]:
    """Where the cell ran: CPU, or the GPU with its CUDA version (a CPU record never shows the
    CUDA build of its torch, which says nothing about the run)."""
    device = p.get("device")
    if not isinstance(device, dict):
        return [("cuda", str(p["cuda"]))] if p.get("cuda") else []
    if device.get("kind", "cpu") == "cpu":
        return [("device", "CPU")]
    gpu = device.get("gpu") or device.get("kind")
    return [("device", f"GPU: {readable(gpu)}" + (f", CUDA {p['cuda']}" if p.get("cuda") else ""))]


def _provenance(p: dict[str, Any]) -> list[tuple[str, str]]:
    """Provenance fields as (label, text), versions last."""
    order = ("xprune_version", "git_commit", "created", "seconds", "baseline_hash", "score_hash",
             "torch_threads", "machine")
    rows = [(k.replace("_", " "), readable(p[k])) for k in order if k in p] + _device(p)
    rows += [(k.replace("_", " "), readable(v)) for k, v in sorted(p.items())
             if k not in order and k not in ("versions", "device", "cuda")]
    rows.append(("library versions", ", ".join(f"{k} {v}" for k, v in sorted(p.get("versions", {}).items()))))
    return rows


def record_context(r: dict[str, Any], setting_href: str, method_href: str) -> dict[str, Any]:
    """Everything a record page prints (``setting_href``: its point on the setting page)."""
    c, m = r["cell"], r["metrics"]
    title = (f"{c['method']} v{c['method_version']} · {c['dataset']} {c['size']}px · "
             f"{c['backbone']} · {c['granularity']} {c['sparsity']:g} · seed {c['seed']}")
    stages = records.SCORE_BLOCKS
    labels = {key: SCORE_LABELS.get(key, (key, g3)) for key in records.score_fields()}
    scores = [{"label": label, "cells": [_fmt(m[stage].get(key), f) for stage in stages]}
              for key, (label, f) in labels.items() if any(key in m[stage] for stage in stages)]
    reduction = m.get("mac_reduction", m.get("speedup"))
    cost = [("parameters", (f"{si(m['params_dense'])} → {si(m['params'])} "
                            f"({m['compression']:.3g}× fewer)")),
            ("MACs per image (theoretical: not a measured speed)",
             f"{si(m['macs_dense'])} → {si(m['macs'])} ({reduction:.3g}× fewer)"),
            ("achieved sparsity", f"{m['achieved_sparsity']:.3g}")]
    if "tie_share" in m:
        cost.append(("tied scores (% of units; broken by a seeded permutation)",
                     f"{100 * m['tie_share']:.1f}%"))
    collapse = None
    if "collapsed" in m:
        collapse = (f"{'yes' if m['collapsed'] else 'no'} (chance {pct(m['chance'])}%)")
    times = [(k.replace("_", " ") + " (s)", f"{m[k]:.3g}") for k in ("score_seconds", "prune_seconds",
                                                                    "recover_seconds") if k in m]
    other = [(k.replace("_", " "), readable(v)) for k, v in sorted(m.items()) if k not in SHOWN]
    block = m.get("transparency") or {}
    return {"title": title, "root": "../", "hash": r["cell_hash"], "schema": r["schema_version"],
            "sparsity": f"{c['sparsity']:g}", "seed": c["seed"],
            "setting_href": setting_href, "method_href": method_href,
            "cell": [(k.replace("_", " "), readable(v)) for k, v in c.items()],
            "method": r["method"], "scores": scores, "cost": cost, "collapse": collapse,
            "latency": latency(m), "transparency": transparency(m),
            "probe": block.get("probe"), "maps": "maps" in block, "times": times, "other": other,
            "provenance": _provenance(r["provenance"]), "dataset": r["dataset"]}
