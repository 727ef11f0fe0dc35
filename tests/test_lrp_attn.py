"""lrp-attn: AttnLRP scores (lxt's rules) for MLP neurons and attention heads of the ViT."""

from __future__ import annotations

import pytest
import torch

from bench import plugins
from bench.api import Site, capture, per_image
from bench.attribution.attnlrp import attnlrp_rules, lxt_rules, relevance
from bench.compute import data
from bench.compute.scoring import run_method
from bench.compute.units import find_sites, scoring_copy

BLOCKS = 4


@pytest.fixture(scope="module")
def batch():
    return data.reference_batch(data.load(data.SYNTHETIC), 4, 0)


def test_the_rules_are_lxt_s():
    rules = lxt_rules()
    assert rules.__file__.endswith("lxt/efficient/rules.py")
    assert {"identity_rule_implicit", "divide_gradient", "stop_gradient"} <= set(dir(rules))


@pytest.mark.parametrize("granularity,shape", [("channel", (192,)), ("head", (6,))])
def test_scores_have_the_site_shapes_are_finite_and_deterministic(vit, batch, granularity, shape):
    cls = plugins.get("lrp-attn").cls
    first, _ = run_method(cls, vit, granularity, batch, seed=0)
    second, _ = run_method(cls, vit, granularity, batch, seed=0)
    assert list(first) == [s.name for s in find_sites(vit, granularity)]
    for name, scores in first.items():
        assert tuple(scores.shape) == shape
        assert torch.isfinite(scores).all() and (scores >= 0).all() and scores.sum() > 0
        assert torch.equal(scores, second[name])


def test_the_rules_change_no_forward_and_leave_no_trace(vit, batch):
    model = scoring_copy(vit)
    with torch.no_grad():
        plain = model(batch.x)
        with attnlrp_rules(model):
            ruled = model(batch.x)
    torch.testing.assert_close(ruled, plain, rtol=0, atol=1e-6)
    assert not [n for n, m in model.named_modules() if "forward" in vars(m)]


def _without_biases(model):
    model = scoring_copy(model)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.zero_()
    return model


def _branch_outputs(model, sub: str) -> list[Site]:
    """Each block's MLP output (fc2) or attention output (proj), read as a channel site."""
    return [Site(f"blocks.{i}.{sub}", model.get_submodule(f"blocks.{i}.{sub}"), "channel")
            for i in range(BLOCKS)]


def test_relevance_is_conserved_through_each_mlp_and_attention_output(vit, batch):
    """Without biases, an MLP's neurons together hold exactly the relevance its output gets
    (the identity rule on GELU; fc2 linear), and the heads hold what proj's output gets."""
    model = _without_biases(vit)
    sites = (find_sites(model, "channel") + find_sites(model, "head")
             + _branch_outputs(model, "mlp.fc2") + _branch_outputs(model, "attn.proj"))
    r = relevance(model, sites, batch)
    for i in range(BLOCKS):
        mlp_out = r[f"blocks.{i}.mlp.fc2"].sum(1)
        assert mlp_out.abs().max() > 1e-3
        torch.testing.assert_close(r[f"blocks.{i}.mlp.fc1"].sum(1), mlp_out, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(r[f"blocks.{i}.attn"].sum(1), r[f"blocks.{i}.attn.proj"].sum(1),
                                   rtol=1e-4, atol=1e-6)


def test_without_the_identity_rule_gelu_would_not_conserve(vit, batch):
    """The same sum by plain gradient x input differs: the conservation above is the rule's."""
    model = _without_biases(vit)
    sites = [find_sites(model, "channel")[0], _branch_outputs(model, "mlp.fc2")[0]]
    with capture(model, sites) as seen:
        logits = model(batch.x)
        torch.autograd.grad((logits * batch.target_mask()).sum(),
                            [seen.outputs[s.name] for s in sites])
    r = {s.name: per_image(seen.outputs[s.name].detach() * seen.grad(s.name)).sum(1) for s in sites}
    assert (r["blocks.0.mlp.fc1"] - r["blocks.0.mlp.fc2"]).abs().max() > 1e-3
