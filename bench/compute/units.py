"""Prunable units: which layers of a model are sites, and the model copy plugins score on."""

from __future__ import annotations

import copy

from torch import nn

from bench.api import Site
from bench.core.axes import Granularity
from bench.core.errors import SpecError


def classifier_name(model: nn.Module) -> str:
    """The model's classifier: its last ``nn.Linear`` in module order. Never pruned."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise SpecError(f"{type(model).__name__} has no Linear classifier")
    return names[-1]


def is_attention(module: nn.Module) -> bool:
    """Multi-head self-attention in timm's layout: ``num_heads``, a fused ``qkv`` Linear and
    an output ``proj`` Linear (whose input is the heads' outputs side by side)."""
    return (isinstance(getattr(module, "num_heads", None), int)
            and isinstance(getattr(module, "qkv", None), nn.Linear)
            and isinstance(getattr(module, "proj", None), nn.Linear))


def is_mlp(module: nn.Module) -> bool:
    """A transformer MLP in timm's layout: ``fc1`` (hidden neurons) then ``fc2``."""
    return (isinstance(getattr(module, "fc1", None), nn.Linear)
            and isinstance(getattr(module, "fc2", None), nn.Linear))


def find_sites(model: nn.Module, granularity: str | Granularity) -> list[Site]:
    """The prunable sites of ``model`` at ``granularity``, in module order.

    ``weight``: every Conv2d and every hidden Linear (all but the classifier). ``channel``:
    the same for a CNN; for a transformer (a model with attention modules) only the MLP
    hidden layers (``fc1``): the embedding width is shared by the whole residual stream and
    is not a channel unit. ``head``: every attention module (transformers only).
    """
    granularity = Granularity.parse(granularity)
    attention = [(name, m) for name, m in model.named_modules() if is_attention(m)]
    if granularity is Granularity.HEAD:
        if not attention:
            raise SpecError(f"{type(model).__name__} has no attention heads: granularity "
                            "'head' needs a transformer backbone")
        return [Site(name, m, granularity) for name, m in attention]
    if granularity is Granularity.CHANNEL and attention:
        return [Site(f"{name}.fc1", m.fc1, granularity)
                for name, m in model.named_modules() if is_mlp(m)]
    head = classifier_name(model)
    return [
        Site(name, module, granularity)
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear)) and name != head
    ]


def scoring_copy(model: nn.Module) -> nn.Module:
    """A private deep copy for a plugin: eval mode, gradients on, no in-place activations."""
    clone = copy.deepcopy(model).eval()
    for module in clone.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    for param in clone.parameters():
        param.requires_grad_(True)
        param.grad = None
    return clone
