"""Reference explainers: input-attribution maps that judge every pruned model by the same lens.

A cell's own method scores units; these explainers are fixed and method-independent, so the
dense and the pruned model of every cell are explained the same way. Each maps
``(model, x, target) -> (N, H, W)``: the relevance of each pixel for the *target-class logit*,
summed over input channels. The target is the true class (single-label tasks) or the label an
image was drawn for (multi-label tasks, see :func:`probe`).

The probe set is a fixed, seeded, class-balanced sample of *test* images, the same for every
cell of a baseline, so dense maps can be computed once per baseline and reused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from captum.attr import IntegratedGradients
from torch import Tensor, nn

from bench.attribution.lrp import composite_for
from bench.compute.units import is_attention, scoring_copy
from bench.core.registry import Registry

CHUNK = 64
IG_STEPS = 8              # Gauss-Legendre: maps agree with 128 steps at Spearman >= 0.995
IG_METHOD = "gausslegendre"
IG_BATCH = 128            # images per forward/backward inside IG (faster than 512 on 1 thread)


class Probe(NamedTuple):
    """Indices into the test split and the class (label) each image's maps explain."""

    index: Tensor
    target: Tensor


def probe(y: Tensor, n: int, n_classes: int, seed: int, multi_label: bool) -> Probe:
    """A fixed, seeded, class-balanced set of test images and their targets (same for all cells).

    Classes take turns (class 0, 1, ..., K-1, 0, ...); at its turn a class adds its next image
    in a seeded random order, skipping images already taken. A class that runs out drops out,
    so each class gets floor(n/K) or ceil(n/K) images when it has enough. For multi-label
    tasks the members of label k are the images positive for k, and an image's target is the
    label it was drawn for; otherwise the target is its true class. Sorted by index.
    """
    if n < 1:
        raise ValueError(f"probe size must be positive, got {n}")
    gen = torch.Generator().manual_seed(seed)
    members = (y.bool().T if multi_label else [y.reshape(-1) == k for k in range(n_classes)])
    queues = [torch.nonzero(m).flatten() for m in members]
    queues = [q[torch.randperm(len(q), generator=gen)].tolist() for q in queues]
    picked: dict[int, int] = {}
    while len(picked) < n and any(queues):
        for k, queue in enumerate(queues):
            while queue and queue[0] in picked:
                queue.pop(0)
            if queue and len(picked) < n:
                picked[queue.pop(0)] = k
    index = torch.tensor(sorted(picked), dtype=torch.long)
    target = torch.tensor([picked[i] for i in index.tolist()], dtype=torch.long)
    return Probe(index, target)


def _seeded_input_gradient(model: nn.Module, x: Tensor, target: Tensor,
                           rules: contextlib.AbstractContextManager) -> Tensor:
    """The gradient at the input under LRP ``rules``, the target logit seeded with 1 (one-hot)."""
    x = x.clone().requires_grad_(True)
    with rules:
        logits = model(x)
        seed = torch.zeros_like(logits).scatter_(1, target[:, None], 1.0)
        (grad,) = torch.autograd.grad(logits, x, grad_outputs=seed)
    return grad


def lrp_epf(model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
    """zennit EpsilonPlusFlat relevance of each input (zennit's input gradient *is* the
    relevance), the target logit seeded with 1 (one-hot)."""
    return _seeded_input_gradient(
        model, x, target, composite_for(model, "epsilon-plus-flat").context(model))


def lrp_attn(model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
    """AttnLRP relevance of each input (lxt's rules, ``bench.attribution.attnlrp``): Gradient x
    Input at the image under the rules, the target logit seeded with 1 (one-hot)."""
    from bench.attribution.attnlrp import attnlrp_rules

    return x * _seeded_input_gradient(model, x, target, attnlrp_rules(model))


def integrated_gradients(model: nn.Module, x: Tensor, target: Tensor,
                         steps: int = IG_STEPS) -> Tensor:
    """captum Integrated Gradients of the target logit from an all-zero baseline."""
    ig = IntegratedGradients(model, multiply_by_inputs=True)
    return ig.attribute(x, baselines=0.0, target=target, n_steps=steps, method=IG_METHOD,
                        internal_batch_size=IG_BATCH)


@dataclass(frozen=True)
class Explainer:
    """A named reference explainer: ``attribute`` sees a private model copy and one chunk."""

    name: str
    description: str
    attribute: Callable[[nn.Module, Tensor, Tensor], Tensor]

    def __call__(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        """Maps (N, H, W), float32: per-pixel relevance for each image's target logit."""
        clone = scoring_copy(model)
        target = target.reshape(-1).long()
        if len(target) != len(x):
            raise ValueError(f"{self.name}: {len(x)} images but {len(target)} targets")
        with torch.enable_grad():
            parts = [self.attribute(clone, x[i:i + CHUNK], target[i:i + CHUNK]).detach()
                     for i in range(0, len(x), CHUNK)]
        return torch.cat(parts).sum(1).float()


EXPLAINERS: Registry[Explainer] = Registry("explainer")
EXPLAINERS.add("lrp-epf", Explainer(
    "lrp-epf",
    "zennit LRP EpsilonPlusFlat (flat rule on the first layer, z+ on other convs, epsilon=1e-6 "
    "on dense layers; BatchNorm merged by the backbone's canonizers), target-class logit seeded with 1 "
    "(one-hot), relevance summed over input channels",
    lrp_epf))
EXPLAINERS.add("lrp-attn", Explainer(
    "lrp-attn",
    "AttnLRP with lxt's rules (LayerNorm and GELU identity, the uniform rule on attention's q, k "
    "and v, softmax by its gradient, Linear layers and the patch embedding epsilon -> 0), "
    "Gradient x Input at the image, target-class logit seeded with 1 (one-hot), relevance "
    "summed over input channels",
    lrp_attn))
EXPLAINERS.add("ig", Explainer(
    "ig",
    f"captum IntegratedGradients of the target-class logit, all-zero baseline (mid-grey), "
    f"{IG_STEPS} Gauss-Legendre steps (captum method {IG_METHOD!r}), multiplied by inputs, "
    "summed over input channels",
    integrated_gradients))


def reference_explainers(model: nn.Module) -> tuple[str, str]:
    """The explainers a model's transparency is measured with: the LRP lens of its
    architecture (zennit EpsilonPlusFlat for a CNN, AttnLRP for a model with attention: EPF's
    ViT maps do not survive even a 10% pruning, see docs/transparency.md), then IG, the lens
    every architecture shares."""
    transformer = any(is_attention(m) for m in model.modules())
    return ("lrp-attn" if transformer else "lrp-epf", "ig")


def explain(name: str, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
    """Maps (N, H, W) of a registered explainer for ``model`` on images ``x``."""
    return EXPLAINERS.get(name)(model, x, target)
