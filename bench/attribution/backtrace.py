"""DL-Backtrace (Sankarapu et al. 2024, arXiv:2411.12643) as a vectorised PyTorch engine.

The model is traced with ``torch.fx`` (so functional residual sums and ``torch.flatten`` are
graph nodes), run once recording every node's output, then walked in reverse: each node's rule
(looked up in the tables of :mod:`bench.attribution.backtrace_rules`) turns the relevance at its
output into relevance at its inputs; a node feeding several consumers sums what they send back.

Seed, per image: relevance 1 at the predicted class (arg-max logit). Contrast mode adds a
second stream ``R-`` seeded on the other classes in proportion to their softmax probability,
rescaled to sum to 1 (the same total as ``R+``).

Site scores rank by a magnitude: channel = sum over images of |relevance arriving at the site's
output, summed over positions| (``R+ - R-`` in contrast mode); weight = |relevance ``R_{i<-j}``
carried by each weight, summed over images and output positions| (``+`` minus ``-`` stream in
contrast mode). Default-mode relevance is non-negative, so the absolute value changes nothing
there; in contrast mode a signed score would prune the units with the strongest
counter-evidence first.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, fx, nn

from bench.api import Batch, Site, per_image
from bench.attribution.backtrace_rules import (
    FUNCTION_RULES,
    METHOD_RULES,
    MODULE_RULES,
    Flow,
    Op,
    Rule,
)
from bench.core.errors import PluginError, one_line

MODES: tuple[str, ...] = ("default", "contrast")
PIXEL_BUDGET = 64 * 28 * 28  # images per chunk x pixels: 64 MedMNIST images at 28 px
Observer = Callable[[fx.Node, Op, Flow], None]

__all__ = ["MODES", "propagate", "scores", "seed", "trace"]


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolically trace ``model`` (sharing its modules), or fail with a one-line PluginError."""
    try:
        return fx.symbolic_trace(model)
    except Exception as exc:
        raise PluginError(f"backtrace: cannot trace {type(model).__name__} with torch.fx: "
                          f"{one_line(exc, typed=False)}") from None


def seed(logits: Tensor, mode: str) -> Tensor:
    """Relevance at the logits, (S, N, K): 1 at the predicted class; contrast adds R- on the rest."""
    top = logits.argmax(1)
    plus = nn.functional.one_hot(top, logits.shape[1]).to(logits.dtype)
    if mode == "default":
        return plus.unsqueeze(0)
    others = logits.softmax(1) * (1 - plus)
    minus = others / others.sum(1, keepdim=True).clamp_min(1e-30)
    return torch.stack([plus, minus])


def _record(gm: fx.GraphModule, x: Tensor) -> dict[fx.Node, object]:
    """Run the traced model once, keeping every node's output."""
    interpreter = fx.Interpreter(gm, garbage_collect_values=False)
    with torch.no_grad():
        interpreter.run(x)
    return interpreter.env


def _rule(gm: fx.GraphModule, node: fx.Node) -> tuple[Rule, nn.Module | None]:
    """The rule of one graph node (and its module), or a PluginError naming the layer."""
    if node.op == "call_module":
        module = gm.get_submodule(node.target)
        rule = MODULE_RULES.get(type(module))
        what = f"layer {node.target!r} ({type(module).__name__})"
    else:
        module = None
        table = FUNCTION_RULES if node.op == "call_function" else METHOD_RULES
        rule = table.get(node.target)
        what = f"operation {node.name!r} ({getattr(node.target, '__name__', node.target)})"
    if rule is None:
        raise PluginError(f"backtrace: no propagation rule for {what}")
    return rule, module


def _tensor_args(node: fx.Node, values: Mapping[fx.Node, object]) -> list[fx.Node]:
    """The node's arguments that are tensors, in call order (repeats kept: x + x)."""
    found: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), found.append)
    return [arg for arg in found if isinstance(values[arg], Tensor)]


def _logits_node(gm: fx.GraphModule, values: Mapping[fx.Node, object]) -> fx.Node:
    """The node whose (N, K) output the model returns."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    node = out.args[0]
    if not isinstance(node, fx.Node) or not isinstance(values[node], Tensor) or values[node].ndim != 2:
        raise PluginError("backtrace: the model must return one (N, classes) logit tensor")
    return node


def propagate(gm: fx.GraphModule, x: Tensor, mode: str, observe: Observer | None = None,
              weights_of: frozenset[nn.Module] = frozenset(),
              to_inputs: bool = True) -> dict[fx.Node, Tensor]:
    """Back-trace one batch; call ``observe`` at every layer; return relevance at the inputs.

    ``weights_of``: modules whose per-weight relevance the rules should compute;
    ``to_inputs=False`` skips the (unused) last step into the model's input.
    """
    if mode not in MODES:
        raise PluginError(f"backtrace: unknown mode {mode!r} (known: {', '.join(MODES)})")
    values = _record(gm, x)
    logits = _logits_node(gm, values)
    rel: dict[fx.Node, Tensor] = {logits: seed(values[logits], mode)}
    for node in reversed(gm.graph.nodes):
        arriving = rel.pop(node, None) if node.op.startswith("call_") else None
        if arriving is not None:
            args = _tensor_args(node, values)
            rule, module = _rule(gm, node)
            op = Op(node.name, module, [values[a] for a in args], arriving,
                    {k: v for k, v in node.kwargs.items() if not isinstance(v, fx.Node)},
                    mode == "contrast", module is not None and module in weights_of,
                    to_inputs or any(a.op != "placeholder" for a in args))
            flow = rule(op)
            if observe is not None:
                observe(node, op, flow)
            for arg, share in zip(args, flow.inputs):
                if share is not None:
                    rel[arg] = rel[arg] + share if arg in rel else share
        if node.op != "placeholder":
            values.pop(node, None)  # every consumer is done: free the activation
    return rel


def _streams(mode: str) -> Tensor:
    """How site scores combine the streams: R in default mode, R+ - R- in contrast mode."""
    return torch.tensor([1.0] if mode == "default" else [1.0, -1.0], dtype=torch.float64)


def _chunk_size(x: Tensor) -> int:
    """Images per chunk: 64 at 28 px, fewer for larger images, to bound recorded activations."""
    return max(1, min(64, PIXEL_BUDGET // (x.shape[-1] * x.shape[-2])))


def scores(model: nn.Module, sites: Sequence[Site], batch: Batch,
           mode: str = "default") -> dict[str, Tensor]:
    """DL-Backtrace site scores of ``model`` on ``batch`` (channel: (C,), weight: weight.shape)."""
    gm = trace(model)
    sign = _streams(mode)
    by_module: dict[nn.Module, list[Site]] = {}
    for site in sites:
        by_module.setdefault(site.module, []).append(site)
    totals = {site.name: site.weight.new_zeros(site.shape) for site in sites}
    weights_of = frozenset(s.module for s in sites if s.granularity == "weight")

    def observe(node: fx.Node, op: Op, flow: Flow) -> None:
        for site in by_module.get(op.module, ()) if op.module is not None else ():
            if site.granularity == "channel":
                net = torch.einsum("s,sn...->n...", sign.to(op.rel), op.rel)  # (N, C, ...)
                totals[site.name] += per_image(net).abs().sum(0)
            else:
                totals[site.name] += flow.weight

    for chunk in batch.chunks(_chunk_size(batch.x)):
        propagate(gm, chunk.x, mode, observe, weights_of, to_inputs=False)
    return {name: total.abs() for name, total in totals.items()}
