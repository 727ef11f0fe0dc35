"""Layer-wise relevance propagation at prunable sites, computed by zennit.

The relevance arriving at a site's output is the *modified gradient* at that tensor while a
zennit composite is registered: every rule hook returns relevance (not gradient) as the
gradient of its input, and ``Pass`` (activations, merged BatchNorms) forwards it unchanged, so
the gradient reaching a conv's output tensor is R[n, c, h, w] there (after the BatchNorm the
canonizer merged into it). A weight's relevance applies the same rule to the weight instead of
the input: for each of the rule's modified passes k (inputs x_k, weights w_k, coefficient c_k
of its reducer), R_w = sum_k c_k * w_k * dz_k/dw_k . s_k with s_k = the rule's R_j / z_j,
summed over images and positions; for the epsilon rule that is sum a_i * w_ji * R_j / z_j.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.models import ResNet
from zennit.canonizers import Canonizer, SequentialMergeBatchNorm
from zennit.composites import EpsilonPlusFlat, LayerMapComposite, layer_map_base
from zennit.core import BasicHook, Composite, ParamMod
from zennit.rules import AlphaBeta, Epsilon, Gamma, ZPlus
from zennit.torchvision import ResNetCanonizer
from zennit.types import Convolution

from bench.api import Batch, Site, capture, per_channel, per_image
from bench.compute.models import CifarResNet

CHUNK = 64

# Canonizers per backbone type, first isinstance match wins: torchvision ResNets and the
# CIFAR ResNet (built from torchvision's BasicBlock) need their residual sums made into
# modules (zennit's ``Sum``, which the Norm rule splits in proportion to the two addends);
# everything else (VGGSmall, Sequential) only needs each BatchNorm that directly follows a
# conv/linear in module order merged into it.
CANONIZERS: tuple[tuple[type | tuple[type, ...], Callable[[], list[Canonizer]]], ...] = (
    ((ResNet, CifarResNet), lambda: [ResNetCanonizer()]),
    (nn.Module, lambda: [SequentialMergeBatchNorm()]),
)

EPSILON = 1e-6  # zennit's default stabiliser of the epsilon rule
GAMMA = 0.25

# Composite presets: name -> factory(canonizers). Under z+ (= alpha1-beta0) every negative
# weight gets relevance exactly 0 (post-ReLU inputs are >= 0), so presets using it on convs
# are channel criteria only; "epsilon" and "gamma" give every weight a relevance.
COMPOSITES: dict[str, Callable[[list[Canonizer]], Composite]] = {
    "epsilon-plus-flat": lambda canon: EpsilonPlusFlat(canonizers=canon),
    "epsilon": lambda canon: LayerMapComposite(
        layer_map_base() + [(Convolution, Epsilon(epsilon=EPSILON)),
                            (nn.Linear, Epsilon(epsilon=EPSILON))], canonizers=canon),
    "gamma": lambda canon: LayerMapComposite(
        layer_map_base() + [(Convolution, Gamma(gamma=GAMMA)),
                            (nn.Linear, Epsilon(epsilon=EPSILON))], canonizers=canon),
    "zplus": lambda canon: LayerMapComposite(
        layer_map_base() + [(Convolution, ZPlus()), (nn.Linear, ZPlus())], canonizers=canon),
    "alpha1-beta0": lambda canon: LayerMapComposite(
        layer_map_base() + [(Convolution, AlphaBeta(alpha=1, beta=0)),
                            (nn.Linear, Epsilon(epsilon=1e-6))], canonizers=canon),
}

# Output seeds: the true class of each image as one-hot (Yeom et al.), or its logit value.
SEEDS: dict[str, Callable[[Tensor, Batch], Tensor]] = {
    "onehot": lambda logits, batch: batch.target_mask(),
    "logit": lambda logits, batch: logits.detach() * batch.target_mask(),
}

# Channel reductions of a chunk's relevance map R (N, C, ...) -> (C,); summed over chunks.
REDUCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "sum": per_channel,                                       # sum_n,h,w R
    "abs": lambda r: per_channel(r.abs()),                    # sum_n,h,w |R|
    "abs-per-image": lambda r: per_image(r).abs().sum(0),     # sum_n |sum_h,w R|
}


@dataclass(frozen=True)
class Relevance:
    """Per-site relevance over the reference set: channel-reduced (C,) and per weight."""

    channel: dict[str, Tensor]
    weight: dict[str, Tensor]


def composite_for(model: nn.Module, preset: str) -> Composite:
    """A fresh zennit composite of a preset, with the canonizers this backbone needs."""
    make = next(factory for kind, factory in CANONIZERS if isinstance(model, kind))
    return COMPOSITES[preset](make())


@contextlib.contextmanager
def recorded_rules(composite: Composite) -> Iterator[dict[str, BasicHook]]:
    """While registering, note which rule template the composite maps to each module name."""
    rules: dict[str, BasicHook] = {}
    original = composite.module_map

    def mapping(ctx: dict, name: str, module: nn.Module):
        template = original(ctx, name, module)
        if isinstance(template, BasicHook):
            rules[name] = template
        return template

    composite.module_map = mapping
    try:
        yield rules
    finally:
        composite.module_map = original


def coefficients(rule: BasicHook) -> list[float]:
    """The constant c_k of each modified pass in the rule's reducer (sum_k c_k * x_k * g_k)."""
    k = len(rule.input_modifiers)
    ones = [torch.ones(()) for _ in range(k)]
    return [float(rule.reducer(ones, [torch.eye(k)[i, j] for j in range(k)])) for i in range(k)]


def weight_relevance(module: nn.Module, rule: BasicHook, a: Tensor, r_out: Tensor) -> Tensor:
    """Relevance of each weight under ``rule``, summed over the chunk's images and positions.

    The weight-gradient of the modified output is the rule's sum over positions of
    x_k,i * s_k,j (torch's convolution_backward, i.e. conv2d_weight, for conv; s^T x for linear).
    """
    outputs, weights = [], []
    mods = zip(rule.input_modifiers, rule.param_modifiers, rule.output_modifiers)
    with torch.enable_grad():
        for in_mod, param_mod, out_mod in mods:
            with ParamMod.ensure(param_mod)(module) as modified:  # restores the weights on exit
                weights.append(modified.weight)
                outputs.append(out_mod(modified.forward(in_mod(a))))
        scaled = rule.gradient_mapper(r_out, outputs)
        scaled = (scaled,) if isinstance(scaled, Tensor) else tuple(scaled)
        grads = torch.autograd.grad(outputs, weights, grad_outputs=scaled)
    return sum(c * w.detach() * g for c, w, g in zip(coefficients(rule), weights, grads))


def relevance(model: nn.Module, sites: Sequence[Site], batch: Batch, composite: Composite,
              reduce: str = "sum", seed: str = "onehot", weights: bool = True,
              chunk: int = CHUNK) -> Relevance:
    """LRP relevance at every site over the reference set, one chunk of images at a time.

    ``reduce`` names the channel reduction (REDUCTIONS), ``seed`` the output seed (SEEDS).
    With ``weights``, also each weight's relevance (see :func:`weight_relevance`), summed.
    The composite and its canonizers are registered only inside this call.
    """
    channel = {s.name: s.module.weight.new_zeros(s.module.weight.shape[0]) for s in sites}
    weight = {s.name: torch.zeros_like(s.module.weight) for s in sites} if weights else {}
    with (recorded_rules(composite) as rules, composite.context(model),
          capture(model, sites) as seen):
        for part in batch.chunks(chunk):
            x = part.x.clone().requires_grad_(True)
            logits = model(x)
            torch.autograd.grad(logits, x, grad_outputs=SEEDS[seed](logits, part))
            for site in sites:
                r_out = seen.grads.get(site.name)
                if r_out is None:  # the site does not reach the output
                    continue
                channel[site.name] += REDUCTIONS[reduce](r_out)
                if weights:
                    weight[site.name] += weight_relevance(
                        site.module, rules[site.name], seen.inputs[site.name].detach(), r_out)
    return Relevance(channel, weight)
