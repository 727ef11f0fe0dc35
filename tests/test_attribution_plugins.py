"""Every built-in plugin: declared metadata, right shapes, finite and deterministic; and the
criteria that must not be degenerate give every weight a relevance."""

import pytest
import torch
from torch import nn

from bench import plugins
from bench.api import Batch
from bench.compute.models import build
from bench.compute.units import find_sites, scoring_copy
from bench.core.spec import applicable
from bench.plugins import metadata_problems

torch.set_num_threads(1)

PLUGINS = {name: plugins.get(name).cls for name in plugins.catalogue().builtins()}
BUILTINS = {"random", "magnitude", "taylor", "activation", "gradient", "bn-scale", "lrp-epsilon",
            "lrp-gamma", "lrp-alphabeta", "ig", "backtrace", "backtrace-contrast", "lrp-attn"}
CHANNEL_ONLY = {"bn-scale", "lrp-alphabeta", "backtrace-contrast"}
HEADS = {"random", "magnitude", "taylor", "activation", "gradient", "ig", "lrp-attn"}
BACKBONES = ("smallcnn", "vgg", "resnet18", "vit")
# every (plugin, backbone) pair where the plugin scores at least one granularity
CASES = [(name, backbone) for name in sorted(PLUGINS) for backbone in BACKBONES
         if any(applicable(backbone, g, PLUGINS[name].architectures)
                for g in PLUGINS[name].granularities)]


def test_builtins_import_only_the_public_plugin_api():
    import ast

    for path in sorted(plugins.BUILTIN_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        engine = {m for m in modules if m and m.split(".")[0] == "bench"}
        assert engine <= {"bench.api", "bench.attribution"}, (path.name, engine)


def test_builtins_are_complete_and_declare_their_granularities():
    assert set(PLUGINS) == BUILTINS
    assert {n: metadata_problems(c) for n, c in PLUGINS.items()} == {n: [] for n in PLUGINS}
    assert {n for n, c in PLUGINS.items() if c.granularities == ("channel",)} == CHANNEL_ONLY
    assert {n for n, c in PLUGINS.items() if "head" in c.granularities} == HEADS


def fast(cls: type) -> type:
    """The plugin itself, or for IG a 2-step subclass (steps is a class attribute)."""
    return type(cls.__name__, (cls,), {"steps": 2}) if hasattr(cls, "steps") else cls


@pytest.mark.parametrize("name,backbone", CASES)
def test_scores_have_site_shapes_and_are_finite_and_deterministic(name, backbone):
    torch.manual_seed(0)
    base = build(backbone, 1, 3)
    batch = Batch(torch.randn(3, 1, 28, 28), torch.tensor([0, 1, 2]), "multi-class", 3)
    cls = PLUGINS[name]
    for granularity in [g for g in cls.granularities if applicable(backbone, g, cls.architectures)]:
        runs = []
        for _ in range(2):
            model = scoring_copy(base)
            sites = find_sites(model, granularity)
            torch.manual_seed(1)  # the engine seeds torch before every score() call
            runs.append(fast(PLUGINS[name])().score(model, sites, batch))
            assert set(runs[-1]) == {s.name for s in sites}
            for site in sites:
                assert tuple(runs[-1][site.name].shape) == site.shape, (granularity, site.name)
                assert torch.isfinite(runs[-1][site.name]).all()
        assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def _inhibitory_net() -> tuple[nn.Module, Batch]:
    """A 2-3-2 ReLU net whose first layer has negative weights on positive inputs."""
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -0.5], [-0.7, 0.8], [0.6, 0.4]]))
        net[0].bias.copy_(torch.tensor([0.1, 0.2, -0.1]))
        net[2].weight.copy_(torch.tensor([[0.5, -0.3, 0.8], [-0.4, 0.9, 0.2]]))
        net[2].bias.zero_()
    x = torch.tensor([[1.0, 0.5], [0.3, 1.2], [0.8, 0.9]])
    return scoring_copy(net), Batch(x, torch.tensor([0, 1, 0]), "multi-class", 2)


@pytest.mark.parametrize("name", ["lrp-epsilon", "lrp-gamma"])
def test_lrp_weight_criteria_give_negative_weights_relevance(name):
    net, batch = _inhibitory_net()
    sites = find_sites(net, "weight")
    got = PLUGINS[name]().score(net, sites, batch)["0"]
    negative = net[0].weight.detach() < 0
    assert (got[negative] > 1e-6).all()  # under z+ these would all be exactly 0
    assert (got >= 0).all()  # |R_w|


def test_lrp_epsilon_weight_relevance_is_the_rule_written_out():
    net, batch = _inhibitory_net()
    w1, b1, w2 = (t.detach() for t in (net[0].weight, net[0].bias, net[2].weight))
    want = torch.zeros_like(w1)
    for x, y in zip(batch.x, batch.y):
        z1 = w1 @ x + b1
        a1 = z1.relu()
        z2 = w2 @ a1
        r2 = torch.zeros(2)
        r2[y] = 1.0
        r1 = a1 * (w2.T @ (r2 / (z2 + 1e-6 * z2.sign())))  # epsilon rule at the head
        s1 = r1 / (z1 + 1e-6 * z1.sign())  # relevance per unit of z at layer 0 (ReLU passes it)
        want += w1 * x.unsqueeze(0) * s1.unsqueeze(1)
    got = PLUGINS["lrp-epsilon"]().score(net, find_sites(net, "weight"), batch)["0"]
    torch.testing.assert_close(got, want.abs(), rtol=1e-5, atol=1e-7)


def test_backtrace_contrast_channel_scores_are_never_negative():
    torch.manual_seed(0)
    model = scoring_copy(build("smallcnn", 1, 3))
    batch = Batch(torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2]), "multi-class", 3)
    got = PLUGINS["backtrace-contrast"]().score(model, find_sites(model, "channel"), batch)
    assert all((s >= 0).all() for s in got.values())
    assert any((s > 0).any() for s in got.values())
