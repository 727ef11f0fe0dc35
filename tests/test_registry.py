"""One Registry for every named thing: lookups, close matches and wildcards, for the generic
type and for each kind the engine registers (datasets, presets, backbones, methods)."""

import pytest

from bench import plugins
from bench.compute import data
from bench.core import backbones, spec
from bench.core.errors import PluginError, SpecError, UnknownNameError
from bench.core.registry import Registry, is_pattern


def _registry(ordered: bool = False) -> Registry[int]:
    registry: Registry[int] = Registry("thing", ordered=ordered)
    for i, name in enumerate(["zeta", "alpha", "alps"]):
        registry.add(name, i)
    return registry


def test_lookup_listing_and_order():
    assert _registry().get("alps") == 2
    assert list(_registry()) == ["alpha", "alps", "zeta"]
    assert list(_registry(ordered=True)) == ["zeta", "alpha", "alps"]
    assert _registry(ordered=True).names("al*") == ["alpha", "alps"]
    assert "zeta" in _registry() and len(_registry()) == 3


def test_an_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError) as exc:
        _registry(ordered=True).get("alpah")
    assert str(exc.value) == ("unknown thing 'alpah'; did you mean alpha, alps? "
                              "(known: zeta, alpha, alps)")


def test_a_duplicate_name_is_an_error():
    with pytest.raises(SpecError, match="duplicate thing name 'alpha'"):
        _registry().add("alpha", 9)


def test_expand_keeps_order_drops_repeats_and_refuses_empty_wildcards():
    registry = _registry()
    assert registry.expand(["zeta", "al*", "alps", "z?ta"]) == ["zeta", "alpha", "alps"]
    with pytest.raises(UnknownNameError, match="no thing matches 'b\\*'"):
        registry.expand(["b*"])
    with pytest.raises(UnknownNameError, match="unknown thing 'beta'"):
        registry.expand(["beta"])
    seen = []
    assert registry.expand(["alpha", "[az]*"], lookup=seen.append) == ["alpha", "alps", "zeta"]
    assert seen == ["alpha"]  # a plain name goes through lookup; wildcard matches do not
    assert is_pattern("lrp-*") and is_pattern("a?") and is_pattern("[ab]") and not is_pattern("a")


def test_datasets():
    registry = data.datasets()
    assert list(registry)[:3] == ["synthetic", "pathmnist", "chestmnist"] == data.names()[:3]
    assert registry.get("breastmnist") == data.info("breastmnist")
    assert registry.expand(["breast*", "pneumonia?nist"]) == ["breastmnist", "pneumoniamnist"]
    with pytest.raises(UnknownNameError, match="unknown dataset 'breastmnst'; did you mean "
                                               "breastmnist"):
        data.info("breastmnst")
    with pytest.raises(UnknownNameError, match="no dataset matches 'zz\\*'"):
        registry.expand(["zz*"])


def test_presets():
    assert spec.preset_names() == ["paper", "quick", "synthetic"] == list(spec.presets())
    assert spec.presets().expand(["q*"]) == ["quick"]
    assert spec.load_spec("quick").name == "quick"
    with pytest.raises(UnknownNameError) as exc:
        spec.load_spec("quik")
    assert str(exc.value) == ("unknown preset 'quik'; did you mean quick? "
                              "(known: paper, quick, synthetic)")


def test_backbones():
    registry = backbones.registry()
    assert list(registry) == ["resnet18", "resnet20", "smallcnn", "vgg", "vit"] == backbones.names()
    assert registry.expand(["v*", "smallcnn"]) == ["vgg", "vit", "smallcnn"]
    with pytest.raises(UnknownNameError) as exc:
        registry.get("resnet50")
    assert str(exc.value) == ("unknown backbone 'resnet50'; did you mean resnet20, resnet18? "
                              "(known: resnet18, resnet20, smallcnn, vgg, vit)")


def test_methods(monkeypatch, tmp_path):
    monkeypatch.setenv("XPRUNE_META_CACHE", str(tmp_path / "meta.json"))
    catalogue = plugins.catalogue()
    assert catalogue.expand(["lrp-*", "magnitude", "lrp-gamma"]) == [
        "lrp-alphabeta", "lrp-attn", "lrp-epsilon", "lrp-gamma", "magnitude"]
    assert catalogue.get("taylor").name == "taylor"
    with pytest.raises(UnknownNameError, match="unknown method 'taylr'; did you mean taylor"):
        catalogue.expand(["taylr"])
    with pytest.raises(UnknownNameError, match="no method matches 'zz\\*'"):
        catalogue.expand(["zz*"])


def test_a_broken_method_is_refused_by_name_and_skipped_by_wildcards():
    broken = plugins.Catalogue(_registry(), {"path:/x/alpine.py": "import failed: boom"})
    with pytest.raises(PluginError, match="path:/x/alpine.py failed to load: import failed"):
        broken.expand(["alpine"])
    assert broken.expand(["alp*"]) == ["alpha", "alps"]  # the broken one is not listed
