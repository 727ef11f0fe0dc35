"""Per-granularity sparsities in a spec: channel pruning can start lower than weight pruning,
and the cells of the values both share keep their hashes."""

from __future__ import annotations

import pytest

from bench.core import spec as specs
from bench.core.errors import SpecError

METHODS = {"magnitude": ("1", ("channel", "weight"))}
BASE = {"datasets": ["synthetic"], "backbones": ["smallcnn"], "methods": ["magnitude"],
        "granularities": ["channel", "weight"]}


def _cells(sparsities) -> list[tuple[str, float, str]]:
    spec = specs.spec_from_dict({**BASE, "sparsities": sparsities}, "t")
    return [(str(c.granularity), c.sparsity, c.hash) for c in specs.expand(spec, METHODS)]


def test_each_granularity_runs_at_its_own_sparsities() -> None:
    cells = _cells({"channel": [0.05, 0.3], "weight": [0.3, 0.9]})
    assert [(g, s) for g, s, _ in cells] == [("channel", 0.05), ("channel", 0.3),
                                             ("weight", 0.3), ("weight", 0.9)]
    # a cell shared with a flat list of sparsities has the same hash
    flat = {(g, s): h for g, s, h in _cells([0.3, 0.9])}
    assert {(g, s): h for g, s, h in cells if (g, s) in flat} == {
        k: v for k, v in flat.items() if k != ("channel", 0.9)}


def test_a_mapping_must_name_every_granularity_and_round_trips() -> None:
    with pytest.raises(SpecError, match="must list every granularity"):
        specs.spec_from_dict({**BASE, "sparsities": {"channel": [0.1]}}, "t")
    with pytest.raises(SpecError, match="unknown granularity"):
        specs.spec_from_dict({**BASE, "sparsities": {"chanel": [0.1], "weight": [0.3]}}, "t")
    with pytest.raises(SpecError, match="channel has no sparsities"):
        specs.spec_from_dict({**BASE, "sparsities": {"channel": [], "weight": [0.3]}}, "t")
    with pytest.raises(SpecError, match="outside"):
        specs.spec_from_dict({**BASE, "sparsities": {"channel": [1.5], "weight": [0.3]}}, "t")
    spec = specs.spec_from_dict({**BASE, "sparsities": {"channel": [0.1], "weight": [0.3]}}, "t")
    assert spec.to_dict()["sparsities"] == {"channel": [0.1], "weight": [0.3]}
    assert specs.spec_from_dict(spec.to_dict(), "t") == spec
    # sparsities from the command line apply to every granularity
    assert specs.override(spec, sparsities=[0.5]).sparsities_for("channel") == (0.5,)


def test_the_published_spec_and_paper_preset_add_low_channel_sparsities() -> None:
    board = specs.load_spec("benchmarks/leaderboard.yaml")
    assert board.sparsities_for("channel") == (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
    assert board.sparsities_for("weight") == (0.3, 0.5, 0.7, 0.9)
    paper = specs.load_spec("paper")
    assert paper.sparsities_for("channel")[:3] == (0.05, 0.1, 0.2)
    assert paper.sparsities_for("weight") == (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
