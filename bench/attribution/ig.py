"""Integrated Gradients for every site from one straight path, with captum's quadrature.

One forward and one backward per path point serve all layers at once: the input x_k =
alpha_k * x (zero baseline) goes through the model, F = sum of the true-class logits, and the
gradients of F with respect to the input and to every site's output are taken together. A
unit's conductance (Dhamdhere et al. 2018; captum's ``LayerConductance``) is the path
integral of dF/da along a(x_k): sum_k (a_{k+1} - a_k) * (g_k + g_{k+1}) / 2 (trapezoid on
captum's ``riemann_trapezoid`` points, which include both endpoints); for the input itself
this is IG, and summed over all units of a layer every path through it adds up to
F(x) - F(0). Weight IG scales all site weights jointly, W(beta) = beta * W, beta from 0 to 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import Tensor, nn

from bench.api import Batch, Site, capture

CHUNK = 64
QUADRATURE = "riemann_trapezoid"


@dataclass(frozen=True)
class PathAttribution:
    """Per-image channel conductance (N, C) at each site and IG of the input (N, C, H, W)."""

    channel: dict[str, Tensor]
    inputs: Tensor


def path_points(steps: int) -> list[float]:
    """The ``steps + 1`` path coefficients from 0 to 1 (captum's trapezoid points)."""
    return approximation_parameters(QUADRATURE)[1](steps + 1)


def per_image_channel(t: Tensor) -> Tensor:
    """Sum a (N, C, ...) tensor over positions -> (N, C)."""
    return t.flatten(2).sum(2) if t.ndim > 2 else t


def _trapezoid(a0: Tensor, g0: Tensor, a1: Tensor, g1: Tensor) -> Tensor:
    return (a1 - a0) * (g0 + g1) / 2


def _point(model: nn.Module, sites: Sequence[Site], part: Batch, alpha: float) -> tuple[list, list]:
    """Activations and gradients of F at input and every site output, for x = alpha * x."""
    x = (alpha * part.x).requires_grad_(True)
    with capture(model, sites) as cap:
        value = part.target_logits(model(x))
        outputs = [x] + [cap.outputs[site.name] for site in sites]
        grads = torch.autograd.grad(value, outputs, allow_unused=True)
    acts = [t.detach() for t in outputs]
    return acts, [torch.zeros_like(a) if g is None else g for a, g in zip(acts, grads)]


def conductance(model: nn.Module, sites: Sequence[Site], batch: Batch, steps: int,
                chunk: int = CHUNK) -> PathAttribution:
    """Conductance per image and channel at every site, and input IG, from one path per chunk."""
    channel: dict[str, list[Tensor]] = {site.name: [] for site in sites}
    inputs = []
    for part in batch.chunks(chunk):
        prev = None
        totals: list[Tensor] = []
        for alpha in path_points(steps):
            acts, grads = _point(model, sites, part, alpha)
            if prev is not None:
                pieces = [_trapezoid(*p, a, g) for p, a, g in zip(prev, acts, grads)]
                pieces = [pieces[0]] + [per_image_channel(t) for t in pieces[1:]]
                totals = pieces if not totals else [t + p for t, p in zip(totals, pieces)]
            prev = list(zip(acts, grads))
        inputs.append(totals[0])
        for site, total in zip(sites, totals[1:]):
            channel[site.name].append(total)
    return PathAttribution({k: torch.cat(v) for k, v in channel.items()}, torch.cat(inputs))


@contextlib.contextmanager
def scaled_weights(sites: Sequence[Site], beta: float) -> Iterator[list[nn.Parameter]]:
    """Temporarily replace every site's weight by a fresh leaf ``beta * weight``; restored on exit."""
    originals = {}
    try:
        for site in sites:
            originals[site.name] = site.module.weight
            site.module.weight = nn.Parameter(beta * site.module.weight.detach())
        yield [site.module.weight for site in sites]
    finally:
        for site in sites:
            if site.name in originals:
                site.module.weight = originals[site.name]


def weight_ig(model: nn.Module, sites: Sequence[Site], batch: Batch, steps: int,
              chunk: int = CHUNK) -> dict[str, Tensor]:
    """IG of F (summed over the reference set) w.r.t. every site weight, all scaled jointly."""
    total = {site.name: torch.zeros_like(site.module.weight) for site in sites}
    points = path_points(steps)
    for part in batch.chunks(chunk):
        prev = None
        for beta in points:
            with scaled_weights(sites, beta) as params:
                grads = torch.autograd.grad(part.target_logits(model(part.x)), params,
                                            allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
            if prev is not None:
                for site, (b0, g0), g1 in zip(sites, prev, grads):
                    total[site.name] += (beta - b0) * (g0 + g1) / 2
            prev = [(beta, g) for g in grads]
    return {site.name: site.module.weight.detach() * total[site.name] for site in sites}
