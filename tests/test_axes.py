"""Axis types: parsed once at the spec boundary, str-valued so that JSON, hashes, labels and
records are those of the plain text, and the record schema's enums come from them."""

import copy
import json
import pickle

import pytest
import yaml

from bench.compute import data
from bench.core.axes import (
    RECOVERY_PATTERN,
    Granularity,
    Recovery,
    RecoveryKind,
    Scope,
    TaskType,
    plain,
)
from bench.core.errors import SpecError
from bench.core.spec import Cell, ScoreKey, load_spec, spec_from_dict, stable_hash
from bench.results import records

BASE = {"datasets": ["synthetic"], "backbones": ["smallcnn"], "methods": ["magnitude"]}
CELL = Cell("synthetic", 28, "smallcnn", "magnitude", "1", "weight", "global", 0.5,
            "finetune:3", 0, 5, 10, 1000)


@pytest.mark.parametrize("text, kind, epochs", [
    ("none", RecoveryKind.NONE, 0),
    ("bnrecal", RecoveryKind.BNRECAL, 0),
    ("finetune:1", RecoveryKind.FINETUNE, 1),
    ("finetune:12", RecoveryKind.FINETUNE, 12),
])
def test_a_recovery_parses_to_its_kind_and_epochs(text, kind, epochs):
    recovery = Recovery(text)
    assert (recovery.kind, recovery.epochs) == (kind, epochs)
    assert recovery == text and str(recovery) == text and type(str(recovery)) is str
    assert Recovery(recovery) is recovery


@pytest.mark.parametrize("text", ["finetune:0", "finetune:01", "finetune", "finetune:x",
                                  "retrain", "", "None", 3, None])
def test_a_bad_recovery_is_one_line(text):
    with pytest.raises(SpecError) as exc:
        Recovery(text)
    assert str(exc.value) == f"unknown recovery {text!r} (none, bnrecal or finetune:K)"


@pytest.mark.parametrize("axis, value, message", [
    (Granularity, "nosuch", "unknown granularity 'nosuch' (known: channel, weight, head)"),
    (Scope, "everywhere", "unknown scope 'everywhere' (known: layer, global)"),
])
def test_an_unknown_axis_value_is_one_line(axis, value, message):
    with pytest.raises(SpecError) as exc:
        axis.parse(value)
    assert str(exc.value) == message
    assert axis.parse(next(iter(axis))) is next(iter(axis))


def test_the_schema_enums_are_the_types_values():
    fields = records.CELL_FIELDS
    assert fields["granularity"]["enum"] == [g.value for g in Granularity] == [
        "channel", "weight", "head"]
    assert fields["scope"]["enum"] == [s.value for s in Scope] == ["layer", "global"]
    assert fields["recovery"]["pattern"] == RECOVERY_PATTERN == (
        r"^(none|bnrecal|finetune:[1-9][0-9]*)$")
    assert all(type(v) is str for f in ("granularity", "scope") for v in fields[f]["enum"])


def test_the_task_types_are_medmnist_s():
    assert {m["task"] for m in data.medmnist_info().values()} == {t.value for t in TaskType}
    assert data.info("breastmnist").task is TaskType.BINARY
    assert data.info("chestmnist").multi_label


def test_specs_and_cells_hold_typed_values():
    spec = spec_from_dict({**BASE, "granularities": ["weight"], "scopes": ["global"],
                           "recovery": ["none", "finetune:2"]}, "t")
    assert spec.granularities == (Granularity.WEIGHT,)
    assert spec.scopes == (Scope.GLOBAL,)
    assert [r.kind for r in spec.recovery] == [RecoveryKind.NONE, RecoveryKind.FINETUNE]
    assert isinstance(CELL.recovery, Recovery) and CELL.recovery.epochs == 3
    assert (CELL.granularity, CELL.scope) == (Granularity.WEIGHT, Scope.GLOBAL)
    assert type(CELL.scores.granularity) is Granularity


def test_typed_values_hash_and_serialise_as_their_text():
    text = {k: str(v) if isinstance(v, str) else v for k, v in CELL.__dict__.items()}
    assert json.dumps(CELL.__dict__, sort_keys=True) == json.dumps(text, sort_keys=True)
    coordinates = {k: v for k, v in text.items() if k != "transparency"}
    assert CELL.hash == stable_hash({"protocol": 3, "kind": "cell", **coordinates})
    assert CELL.to_dict() == text and all(
        type(v) is str for v in CELL.to_dict().values() if isinstance(v, str))
    assert Cell.from_dict(CELL.to_dict()) == CELL
    assert CELL.label() == "synthetic/smallcnn/magnitude/weight/global/s=0.5/finetune:3/seed0"
    assert {"channel": 1}[Granularity.CHANNEL] == 1 and f"{Scope.LAYER}" == "layer"
    # messages quote values with !r: a typed value reads as its text there too
    assert [repr(v) for v in (Granularity.HEAD, Scope.GLOBAL, TaskType.BINARY, CELL.recovery)] == [
        "'head'", "'global'", "'binary-class'", "'finetune:3'"]


def test_typed_values_survive_pickle_and_copy():
    for value in (CELL, CELL.scores, Recovery("finetune:4"), Granularity.HEAD):
        for clone in (pickle.loads(pickle.dumps(value)), copy.deepcopy(value)):
            assert clone == value and type(clone) is type(value)
    assert type(pickle.loads(pickle.dumps(CELL)).recovery) is Recovery
    key = ScoreKey(CELL.baseline, "magnitude", "1", "head", 10)
    assert key.granularity is Granularity.HEAD


def test_a_spec_writes_plain_yaml():
    spec = load_spec("quick")
    text = yaml.safe_dump(spec.to_dict(), sort_keys=False)
    assert yaml.safe_load(text)["granularities"] == ["channel", "weight"]
    assert plain({"a": (Granularity.HEAD, Recovery("none"))}) == {"a": ["head", "none"]}
