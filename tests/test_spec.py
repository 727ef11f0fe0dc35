"""Specs and cells: validation, hashing, expansion."""

import pytest

from bench.core.errors import SpecError
from bench.core.spec import Cell, expand, load_spec, override, spec_from_dict

BASE = {"datasets": ["synthetic"], "backbones": ["smallcnn"], "methods": ["magnitude"]}


def test_cell_hash_is_stable_and_round_trips():
    cell = Cell("synthetic", 28, "smallcnn", "magnitude", "1", "channel", "layer", 0.5,
                "bnrecal", 0, 5, 10)
    assert cell.hash == Cell.from_dict(dict(cell.__dict__)).hash
    assert len(cell.hash) == 16
    other = Cell(**{**cell.__dict__, "sparsity": 0.6})
    assert other.hash != cell.hash


def test_method_version_is_part_of_the_identity():
    a = Cell("synthetic", 28, "smallcnn", "taylor", "1", "weight", "layer", 0.5, "none", 0, 5, 10)
    b = Cell(**{**a.__dict__, "method_version": "2"})
    assert a.hash != b.hash and a.scores.hash != b.scores.hash
    assert a.baseline.hash == b.baseline.hash


@pytest.mark.parametrize("change, message", [
    ({"sparsities": [1.5]}, "outside (0, 1)"),
    ({"sparsities": [0]}, "outside (0, 1)"),
    ({"sparsities": ["x"]}, "is not a number"),
    ({"scopes": ["everywhere"]}, "unknown scope"),
    ({"recovery": ["finetune"]}, "unknown recovery"),
    ({"seeds": [-1]}, "non-negative"),
    ({"colour": "red"}, "unknown key(s) colour"),
    ({"datasets": []}, "datasets is empty"),
])
def test_invalid_specs_are_refused_with_a_reason(change, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec_from_dict({**BASE, **change}, "t")


def test_missing_axis_is_named():
    with pytest.raises(SpecError, match="missing methods"):
        spec_from_dict({"datasets": ["synthetic"], "backbones": ["smallcnn"]}, "t")


def test_malformed_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [synthetic\n")
    with pytest.raises(SpecError, match="malformed YAML"):
        load_spec(str(bad))


def test_presets_load_and_flags_override():
    quick = load_spec("quick")
    assert quick.datasets == ("breastmnist", "pneumoniamnist")
    assert quick.sparsities == (0.3, 0.5, 0.7, 0.9)
    changed = override(quick, datasets=["synthetic"], sparsities=None)
    assert changed.datasets == ("synthetic",) and changed.sparsities == quick.sparsities


def test_expand_is_the_cross_product_minus_undeclared_granularities():
    spec = spec_from_dict({**BASE, "methods": ["magnitude", "activation"],
                           "granularities": ["channel", "weight"], "sparsities": [0.5, 0.3],
                           "seeds": [0, 1]}, "t")
    cells = expand(spec, {"magnitude": ("1", ("channel", "weight")),
                          "activation": ("1", ("channel",))})
    # magnitude: 2 granularities x 2 sparsities x 2 seeds; activation: channel only
    assert len(cells) == 8 + 4
    assert not [c for c in cells if c.method == "activation" and c.granularity == "weight"]
    assert len({c.hash for c in cells}) == len(cells)
