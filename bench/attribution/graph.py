"""Which BatchNorm consumes each site's output: the model's dataflow, not its attribute names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import torch.fx
from torch import nn

from bench.api import Site

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def consumers_by_trace(model: nn.Module, sites: Sequence[Site]) -> dict[str, nn.Module]:
    """Trace the forward with torch.fx; a site's BN is a BatchNorm module fed by its output."""
    graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    wanted = {site.name for site in sites}
    found = {}
    for node in graph.nodes:
        if node.op == "call_module" and node.target in wanted:
            bns = [modules[user.target] for user in node.users if user.op == "call_module"
                   and isinstance(modules[user.target], BATCHNORMS)]
            if bns:
                found[node.target] = bns[0]
    return found


def consumers_by_order(model: nn.Module, sites: Sequence[Site]) -> dict[str, nn.Module]:
    """Module order: a BatchNorm that is the very next leaf module after the site."""
    wanted = {site.name for site in sites}
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    return {name: nxt for (name, _), (_, nxt) in pairwise(leaves)
            if name in wanted and isinstance(nxt, BATCHNORMS)}


# Strategies in order of trust; the first that does not raise wins.
STRATEGIES: tuple[Callable[[nn.Module, Sequence[Site]], dict[str, nn.Module]], ...] = (
    consumers_by_trace, consumers_by_order)


def consuming_batchnorms(model: nn.Module, sites: Sequence[Site]) -> dict[str, nn.Module]:
    """Site name -> the BatchNorm applied directly to its output (absent if there is none)."""
    for strategy in STRATEGIES[:-1]:
        try:
            return strategy(model, sites)
        except torch.fx.proxy.TraceError:
            continue
    return STRATEGIES[-1](model, sites)
