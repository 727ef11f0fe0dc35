"""Result records: one JSON file per cell, versioned schema, validated on write and on read.

A record is the durable, reviewable result of one cell, assembled by :func:`make_record` in
the coordinator from the cell and its task's ``Outcome`` (provenance from ``bench.results.provenance``).
Numbers are stored as numbers; ``status`` is ``ok`` (metrics present) or ``failed``
(``error`` holds the one-line reason). Writes are atomic (temporary file + rename) so a killed
run never leaves half a record. The cell's enums come from ``bench.core.axes``.

Schema 2 (protocol 2) adds the clinical metrics, collapse flags, the tie share, MAC reduction
(renamed from schema 1's ``speedup``) and interleaved latency with its spread and measured
speed-up. Schema 3 (protocol 3, pinned kernels) adds to the provenance the baseline's
weight digest (``baseline_digest``, ``bench.compute.baseline.digest``) and the kernels that computed
(``kernels``, ``bench.compute.kernels.settings``). Schema 1 and 2 records stay readable: each record is
validated against its own version.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import jsonschema

from bench import plugins
from bench.compute import data
from bench.core.axes import RECOVERY_PATTERN, Granularity, Scope
from bench.core.errors import RecordError, XPruneError
from bench.core.textsafe import TEXT_MAX, clip
from bench.results.provenance import provenance, torch_threads

if TYPE_CHECKING:
    from bench.core.spec import Cell
    from bench.core.tasks import Outcome

SCHEMA_VERSION = 3

_NUM = {"type": "number"}
_OPT_NUM = {"type": ["number", "null"]}
_SCORE = {
    "type": "object",
    "required": ["acc", "auc"],
    "properties": {"acc": _NUM, "auc": _OPT_NUM},
    "additionalProperties": False,
}

CELL_FIELDS = {
    "dataset": {"type": "string"},
    "size": {"type": "integer"},
    "backbone": {"type": "string"},
    "method": {"type": "string"},
    "method_version": {"type": "string"},
    "granularity": {"enum": [g.value for g in Granularity]},  # head: added within schema 2
    "scope": {"enum": [s.value for s in Scope]},
    "sparsity": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "recovery": {"type": "string", "pattern": RECOVERY_PATTERN},
    "seed": {"type": "integer", "minimum": 0},
    "epochs": {"type": "integer", "minimum": 1},
    "reference_per_class": {"type": "integer", "minimum": 1},
}

METRIC_FIELDS = {
    "dense": _SCORE,
    "pruned": _SCORE,
    "recovered": _SCORE,
    "params_dense": {"type": "integer"},
    "params": {"type": "integer"},
    "macs_dense": {"type": "integer"},
    "macs": {"type": "integer"},
    "compression": _NUM,
    "speedup": _NUM,
    "achieved_sparsity": _NUM,
    "latency_ms": {
        "type": "object",
        "required": ["dense_b1", "pruned_b1", "dense_b64", "pruned_b64"],
        "additionalProperties": _NUM,
    },
    "score_seconds": _NUM,
    "prune_seconds": _NUM,
    "recover_seconds": _NUM,
}

SCHEMA_V1: dict[str, Any] = {
    "type": "object",
    "required": ["schema_version", "cell_hash", "status", "error", "cell", "method",
                 "dataset", "metrics", "provenance"],
    "properties": {
        "schema_version": {"const": 1},
        "cell_hash": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "status": {"enum": ["ok", "failed"]},
        "error": {"type": ["string", "null"]},
        "cell": {"type": "object", "required": list(CELL_FIELDS), "properties": CELL_FIELDS,
                 "additionalProperties": False},
        "method": {"type": "object",
                   "required": ["name", "family", "description", "reference", "version", "source"],
                   "additionalProperties": {"type": "string"}},
        "dataset": {"type": "object", "required": ["flag", "task", "n_classes", "synthetic", "md5"]},
        "metrics": {"oneOf": [
            {"type": "null"},
            {"type": "object", "required": list(METRIC_FIELDS), "properties": METRIC_FIELDS},
        ]},
        "provenance": {"type": "object",
                       "required": ["xprune_version", "git_commit", "baseline_hash", "versions",
                                    "created", "seconds"]},
    },
    "allOf": [
        {"if": {"properties": {"status": {"const": "ok"}}},
         "then": {"properties": {"metrics": {"type": "object"}, "error": {"type": "null"}}},
         "else": {"properties": {"error": {"type": "string"}}}},
    ],
}


_CLINICAL = {"type": "object", "required": ["acc", "auc", "bal_acc", "sens", "spec", "ece"],
             "properties": {"acc": _NUM, "auc": _OPT_NUM, "bal_acc": _NUM, "sens": _NUM,
                            "spec": _NUM, "ece": _NUM},
             "additionalProperties": False}
_TIMING = {
    "type": "object",
    "required": ["dense_ms", "dense_iqr_ms", "pruned_ms", "pruned_iqr_ms", "speedup",
                 "speedup_ci", "within_noise", "repeats"],
    "properties": {"dense_iqr_ms": {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 2},
                   "pruned_iqr_ms": {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 2},
                   "speedup_ci": {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 2},
                   "within_noise": {"type": "boolean"}},
}
_AGREEMENT = {"type": "object",
              "required": ["spearman", "iou_top10", "deletion_dense", "deletion_pruned"],
              "properties": {"spearman": {"type": "number", "minimum": -1, "maximum": 1},
                             "iou_top10": {"type": "number", "minimum": 0, "maximum": 1},
                             "deletion_dense": {"type": "number", "minimum": 0, "maximum": 1},
                             "deletion_pruned": {"type": "number", "minimum": 0, "maximum": 1}}}
_TRANSPARENCY = {
    "type": "object", "required": ["probe", "explainers"],
    "properties": {"probe": {"type": "object"},
                   "explainers": {"type": "object", "additionalProperties": {"type": "string"}},
                   "maps": {"type": "object", "required": ["explainer", "image_shape", "images",
                                                           "dense", "pruned"]}},
    "additionalProperties": _AGREEMENT,
}
METRIC_FIELDS_V2 = {
    **{k: v for k, v in METRIC_FIELDS.items() if k not in ("speedup", "latency_ms")},
    "dense": _CLINICAL,
    "pruned": _CLINICAL,
    "recovered": _CLINICAL,
    "chance": _NUM,
    "collapsed": {"type": "boolean"},
    "mac_reduction": _NUM,
    "tie_share": {"type": "number", "minimum": 0, "maximum": 1},
    # CPU latency always; ``gpu`` (same timings on the GPU) only for cells run with CUDA
    "latency": {"type": "object", "required": ["hardware", "threads", "b1", "b64"],
                "properties": {"hardware": {"type": "string"}, "threads": {"type": "integer"},
                               "b1": _TIMING, "b64": _TIMING,
                               "gpu": {"type": "object", "required": ["hardware", "b1", "b64"],
                                       "properties": {"hardware": {"type": "string"},
                                                      "b1": _TIMING, "b64": _TIMING}}}},
    "transparency": {"oneOf": [{"type": "null"}, _TRANSPARENCY]},
}
SCHEMA_V2: dict[str, Any] = {
    **SCHEMA_V1,
    "properties": {
        **SCHEMA_V1["properties"],
        "schema_version": {"const": 2},
        "cell": {"type": "object", "required": [*CELL_FIELDS, "min_steps"],
                 "properties": {**CELL_FIELDS, "min_steps": {"type": "integer", "minimum": 0},
                                "transparency": {"type": "boolean"}},
                 "additionalProperties": False},
        "metrics": {"oneOf": [
            {"type": "null"},
            {"type": "object", "required": list(METRIC_FIELDS_V2), "properties": METRIC_FIELDS_V2},
        ]},
    },
}
KERNELS = {"type": "object",
           "required": ["pinned", "env", "cpu_capability", "cpu_model", "onednn", "blas"],
           "properties": {"pinned": {"type": "boolean"},
                          "env": {"type": "object",
                                  "additionalProperties": {"type": ["string", "null"]}},
                          "cpu_capability": {"type": "string"}, "cpu_model": {"type": "string"},
                          "onednn": {"type": "string"}, "blas": {"type": "string"}}}
SCHEMA: dict[str, Any] = {
    **SCHEMA_V2,
    "properties": {
        **SCHEMA_V2["properties"],
        "schema_version": {"const": SCHEMA_VERSION},
        "provenance": {
            "type": "object",
            "required": [*SCHEMA_V1["properties"]["provenance"]["required"], "baseline_digest",
                         "kernels"],
            # null only where no baseline was loaded (a failed cell)
            "properties": {"baseline_digest": {"oneOf": [
                {"type": "null"}, {"type": "string", "pattern": "^[0-9a-f]{64}$"}]},
                "kernels": KERNELS}},
    },
}
SCHEMAS = {1: SCHEMA_V1, 2: SCHEMA_V2, 3: SCHEMA}
SCORE_BLOCKS = ("dense", "pruned", "recovered")  # a metrics block's task scores, by stage


def metric_schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """Schema ``version``'s metric fields (name -> JSON schema), in schema order: the one list
    verify compares and the record page shows (read at call time, never copied)."""
    return SCHEMAS[version]["properties"]["metrics"]["oneOf"][1]["properties"]


def score_fields(version: int = SCHEMA_VERSION) -> tuple[str, ...]:
    """The task metrics a score block (``dense``, ``pruned``, ``recovered``) holds."""
    return tuple(metric_schema(version)["dense"]["properties"])


def metric_names() -> set[str]:
    """Every metric field any schema version defines (a record page knows them all)."""
    return {name for version in SCHEMAS for name in metric_schema(version)}


def scalar_fields(version: int = SCHEMA_VERSION) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Schema ``version``'s single-value metric fields: (exact: integers and flags,
    numeric: numbers), in schema order."""
    kinds = {name: field.get("type") for name, field in metric_schema(version).items()}
    return (tuple(n for n, t in kinds.items() if t in ("integer", "boolean")),
            tuple(n for n, t in kinds.items() if t == "number"))


def protocol(record: dict[str, Any]) -> int:
    """The engine protocol (``bench.core.spec.PROTOCOL``) that computed a record: each protocol
    wrote its own schema version (1, 2; 3 added the pinned kernels and the baseline digest)."""
    return int(record["schema_version"])


def validate(record: Any, where: str = "record") -> dict[str, Any]:
    """Check a record against the schema; raise RecordError with a one-line reason."""
    if isinstance(record, dict):
        version = record.get("schema_version")
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise RecordError(f"{where}: schema_version {version} is newer than this xprune "
                              f"understands ({SCHEMA_VERSION}); upgrade xprune-bench")
    bad = _non_finite_or_oversized(record)
    if bad:
        raise RecordError(f"{where}: invalid record at {bad}")
    version = record.get("schema_version") if isinstance(record, dict) else None
    exc = jsonschema.exceptions.best_match(_validator(version).iter_errors(record))
    if exc is not None:  # the same error jsonschema.validate raises, without re-checking SCHEMA
        path = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise RecordError(f"{where}: invalid record at {path}: {exc.message}")
    return record


def _non_finite_or_oversized(value: Any, path: str = "") -> str | None:
    """Where ``value`` holds a NaN or infinite number (not JSON) or a string longer than
    ``TEXT_MAX`` characters (a 20 MB description would become a 100 MB site), if anywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path or '(top)'}: {value} is not a finite number"
    if isinstance(value, str) and len(value) > TEXT_MAX:
        return f"{path or '(top)'}: text of {len(value)} characters (at most {TEXT_MAX})"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and len(key) > TEXT_MAX:
            return f"{path or '(top)'}: a key of {len(key)} characters"
        found = _non_finite_or_oversized(item, f"{path}/{key}" if path else str(key))
        if found:
            return found
    return None


@functools.cache
def _validator(version: Any) -> jsonschema.protocols.Validator:
    """One validator per schema version (``jsonschema.validate`` re-checks the schema on every
    call: 12 ms); an unknown version is checked against the current schema."""
    schema = SCHEMAS.get(version, SCHEMA)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def stage(directory: Path, record: dict[str, Any]) -> Path:
    """Validate, then write ``record`` to a temporary file in ``directory`` (``.tmp-*``, which
    every reader skips); the caller renames it into place or deletes it."""
    validate(record)
    text = json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:  # disk full, interrupted: no temporary record is left behind
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write(directory: Path, record: dict[str, Any]) -> Path:
    """Validate, then atomically write ``<directory>/<cell_hash>.json``."""
    tmp = stage(directory, record)
    path = directory / f"{record['cell_hash']}.json"
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def read(path: Path) -> dict[str, Any]:
    """Read and validate one record file."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, NaN/Infinity, not UTF-8
        raise RecordError(f"{path}: not a readable JSON record ({exc})") from None
    return validate(record, str(path))


def iter_records(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record under ``directory`` (recursively), validated, in path order."""
    for path in sorted(Path(directory).rglob("*.json")):
        if not path.name.startswith(".tmp-"):
            yield read(path)


def make_record(cell: Cell, outcome: Outcome, soundness: str | None = None) -> dict[str, Any]:
    """Assemble a schema-valid record from a cell, its task outcome (ok or failed) and its
    method's soundness verdict (None: not checked)."""
    info = data.info(cell.dataset)
    run_on = outcome.device or {"kind": "cpu", "gpu": None}
    metrics, computed = split_provenance(outcome.result if outcome.ok else None)
    return {
        "schema_version": SCHEMA_VERSION,
        "cell_hash": cell.hash,
        "status": "ok" if outcome.ok else "failed",
        "error": None if outcome.ok else (clip(outcome.error) if isinstance(outcome.error, str)
                                            else outcome.error),
        "cell": cell.to_dict(),
        "method": method_block(cell, soundness),
        "dataset": {"flag": info.flag, "task": str(info.task), "n_classes": info.n_classes,
                    "synthetic": info.synthetic, "md5": _md5(cell)},
        "metrics": metrics,
        "provenance": provenance() | {
            "baseline_digest": computed.get("baseline_digest"),
            "kernels": computed.get("kernels") or provenance()["kernels"],
            "device": run_on,
            "determinism": outcome.determinism or provenance()["determinism"],
            "torch_threads": outcome.threads if outcome.threads is not None else torch_threads(),
            "baseline_hash": cell.baseline.hash, "score_hash": cell.scores.hash,
            "seconds": round(outcome.seconds, 3),
            # how the cell's scores were computed (bench.compute.sandbox.isolation), when it ran
            **({"scoring": computed["scoring_isolation"]}
               if computed.get("scoring_isolation") else {}),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    }


def split_provenance(result: dict[str, Any] | None) -> tuple[dict[str, Any] | None, dict]:
    """A cell's result without, and with only, what belongs in the provenance: the baseline
    digest, the kernel settings of the process that computed (``bench.compute.runner.run_cell``) and
    how its scores were isolated."""
    if result is None:
        return None, {}
    moved = ("baseline_digest", "kernels", "scoring_isolation")
    return ({k: v for k, v in result.items() if k not in moved},
            {k: result[k] for k in moved if k in result})


def method_block(cell: Cell, soundness: str | None) -> dict[str, str]:
    """A record's ``method``: the plugin's metadata (or the cell's name and version when the
    plugin is gone), its soundness verdict and the architectures it declares."""
    try:
        method = plugins.info(cell.method).label.record_block()
    except XPruneError:
        method = {k: "" for k in ("family", "description", "reference", "source")}
        method |= {"name": cell.method, "version": cell.method_version}
    method = {k: clip(str(v)) for k, v in method.items()}  # a plugin's free text, bounded
    method["soundness"] = soundness or "not checked"
    method["architectures"] = method.get("architectures", "any")
    return method


def _md5(cell: Cell) -> str | None:
    return None if cell.dataset == data.SYNTHETIC else data.expected_md5(cell.dataset, cell.size)
