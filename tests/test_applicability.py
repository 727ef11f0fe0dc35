"""Which (method, backbone, granularity) cells exist: heads only in transformers, methods only
on the architectures they declare; the rest is never planned and shown as not applicable."""

from __future__ import annotations

from pathlib import Path

import pytest
from recordfactory import curve, variant

from bench import plugins
from bench.core.errors import SpecError
from bench.core.spec import Spec, applicable, expand
from bench.results import records
from bench.run import coordinator
from bench.site.render import render


def test_heads_exist_only_in_transformers_and_methods_only_where_declared():
    assert applicable("vit", "head", None) and not applicable("smallcnn", "head", None)
    assert applicable("resnet18", "weight", ("cnn",)) and not applicable("vit", "channel", ("cnn",))
    assert applicable("vit", "channel", ("transformer",))
    assert not applicable("vgg", "channel", ("transformer",))


def test_inapplicable_cells_are_not_in_the_matrix():
    spec = Spec(name="t", datasets=("synthetic",), backbones=("smallcnn", "vit"),
                methods=("lrp-epsilon", "lrp-attn", "taylor"),
                granularities=("channel", "weight", "head"))
    declared = {"lrp-epsilon": ("2", ("channel", "weight"), ("cnn",)),
                "lrp-attn": ("1", ("channel", "head"), ("transformer",)),
                "taylor": ("1", ("channel", "weight", "head"), None)}
    cells = {(c.backbone, c.method, c.granularity) for c in expand(spec, declared)}
    assert cells == {("smallcnn", "lrp-epsilon", "channel"), ("smallcnn", "lrp-epsilon", "weight"),
                     ("smallcnn", "taylor", "channel"), ("smallcnn", "taylor", "weight"),
                     ("vit", "lrp-attn", "channel"), ("vit", "lrp-attn", "head"),
                     ("vit", "taylor", "channel"), ("vit", "taylor", "weight"),
                     ("vit", "taylor", "head")}


def test_builtins_declare_what_they_can_score():
    catalogue = plugins.catalogue()
    cnn_only = {"lrp-epsilon", "lrp-gamma", "lrp-alphabeta", "backtrace", "backtrace-contrast",
                "bn-scale"}
    for name in catalogue.methods:
        entry = catalogue.get(name)
        expected = (("cnn",) if name in cnn_only else ("transformer",) if name == "lrp-attn"
                    else None)
        assert entry.architectures == expected, name
    heads = {n for n in catalogue.methods if "head" in catalogue.get(n).granularities}
    assert heads == {"random", "magnitude", "taylor", "gradient", "activation", "ig", "lrp-attn"}


def test_a_bad_architecture_declaration_is_a_metadata_problem():
    from bench.api import Method

    class Odd(Method):
        name, family, description, reference, version = "odd", "x", "x", "x", "1"
        granularities = ("channel",)
        architectures = ("rnn",)

        def score(self, model, sites, batch):
            return {}

    problems = plugins.metadata_problems(Odd)
    assert any(p.startswith("architectures ('rnn',) must be None or a non-empty subset")
               for p in problems)


def test_the_planner_skips_inapplicable_cells(tmp_path):
    spec = Spec(name="t", datasets=("synthetic",), backbones=("smallcnn", "vit"),
                methods=("*",), granularities=("channel", "head"))
    plan = coordinator.plan(spec, tmp_path / "out", tmp_path / "cache")
    vit_methods = {c.method for c in plan.cells if c.backbone == "vit"}
    assert not vit_methods & {"lrp-epsilon", "lrp-gamma", "lrp-alphabeta", "backtrace",
                              "backtrace-contrast", "bn-scale"}
    assert "lrp-attn" in vit_methods
    assert {c.method for c in plan.cells if c.backbone == "smallcnn"} >= {"lrp-epsilon", "taylor"}
    assert not [c for c in plan.cells if c.backbone == "smallcnn" and c.granularity == "head"]
    assert not [c for c in plan.cells if c.method == "lrp-attn" and c.backbone == "smallcnn"]


def test_the_vit_is_refused_at_another_size(tmp_path):
    spec = Spec(name="t", datasets=("synthetic",), backbones=("vit",), methods=("random",),
                size=64)
    with pytest.raises(SpecError, match="backbone vit is built for 28 px images, not size 64"):
        coordinator.plan(spec, tmp_path / "out", tmp_path / "cache")


def test_the_leaderboard_shows_inapplicable_methods_as_not_applicable(tmp_path: Path):
    recs = curve({0.5: 0.9, 0.9: 0.7}, method="taylor", backbone="smallcnn")
    recs += [variant(r, {"method.architectures": "cnn"})
             for r in curve({0.5: 0.8, 0.9: 0.6}, method="lrp-epsilon", backbone="smallcnn")]
    recs += curve({0.5: 0.85, 0.9: 0.5}, method="taylor", backbone="vit")
    for r in recs:
        records.write(tmp_path / "reports" / r["cell"]["backbone"] / r["cell"]["method"], r)
    render(tmp_path / "reports", tmp_path / "site")
    pages = {p.name: p.read_text() for p in (tmp_path / "site" / "settings").glob("*.html")}
    vit = next(text for name, text in pages.items() if "-vit-" in name)
    cnn = next(text for name, text in pages.items() if "-smallcnn-" in name)
    assert ("Not applicable to vit (the method declares the architectures it can score): "
            "lrp-epsilon.") in vit
    assert "Not run in this setting" not in vit  # not applicable is not 'not run'
    assert "Not applicable" not in cnn
    method = (tmp_path / "site" / "methods" / "lrp-epsilon.html").read_text()
    assert "<dt>Applies to</dt><dd>cnn backbones only (not applicable to the others" in method
