"""Every attribution plugin added here: declared metadata, right shapes, finite and deterministic."""

from pathlib import Path

import pytest
import torch

from bench.api import Batch
from bench.models import build
from bench.plugins import BUILTIN_DIR, load_file, metadata_problems
from bench.units import find_sites, scoring_copy

torch.set_num_threads(1)

FILES = ("lrp.py", "ig.py", "activation.py", "gradient.py", "bn_scale.py")
PLUGINS = {cls.name: cls for f in FILES for cls in load_file(Path(BUILTIN_DIR) / f)}


def test_plugins_are_complete_and_named_as_specified():
    assert set(PLUGINS) == {"lrp-epsilon", "lrp-zplus", "lrp-alphabeta", "ig", "activation",
                            "gradient", "bn-scale"}
    assert {n: metadata_problems(c) for n, c in PLUGINS.items()} == {n: [] for n in PLUGINS}


def fast(cls: type) -> type:
    """The plugin itself, or for IG a 2-step subclass (steps is a class attribute)."""
    return type(cls.__name__, (cls,), {"steps": 2}) if hasattr(cls, "steps") else cls


@pytest.mark.parametrize("backbone", ["smallcnn", "vgg", "resnet18"])
@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_scores_have_site_shapes_and_are_finite_and_deterministic(name, backbone):
    torch.manual_seed(0)
    base = build(backbone, 1, 3)
    batch = Batch(torch.randn(3, 1, 28, 28), torch.tensor([0, 1, 2]), "multi-class", 3)
    for granularity in PLUGINS[name].granularities:
        runs = []
        for _ in range(2):
            model = scoring_copy(base)
            sites = find_sites(model, granularity)
            runs.append(fast(PLUGINS[name])().score(model, sites, batch))
            assert set(runs[-1]) == {s.name for s in sites}
            for site in sites:
                assert tuple(runs[-1][site.name].shape) == site.shape, (granularity, site.name)
                assert torch.isfinite(runs[-1][site.name]).all()
        assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
