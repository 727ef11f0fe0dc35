"""Prunable units: which layers of a model are sites, and the model copy plugins score on."""

from __future__ import annotations

import copy

from torch import nn

from .api import GRANULARITIES, Site
from .errors import SpecError


def classifier_name(model: nn.Module) -> str:
    """The model's classifier: its last ``nn.Linear`` in module order. Never pruned."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise SpecError(f"{type(model).__name__} has no Linear classifier")
    return names[-1]


def find_sites(model: nn.Module, granularity: str) -> list[Site]:
    """Every Conv2d and every hidden Linear (all but the classifier), in module order."""
    if granularity not in GRANULARITIES:
        raise SpecError(f"unknown granularity {granularity!r} (known: {', '.join(GRANULARITIES)})")
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
