"""AttnLRP relevance at the sites of a timm Vision Transformer, with lxt's efficient rules.

lxt (Achtibat et al. 2024) computes LRP in the Gradient x Input framework: every operation
that is not linear is rewritten so that its gradient carries the rule's relevance divided by
its input; the relevance at any tensor ``a`` is then ``a * dF/da`` for the seeded output F.
The rules, each an lxt function applied inside :func:`attnlrp_rules`:

* LayerNorm: identity rule, the standard deviation detached (``stop_gradient``; lxt's
  ``layer_norm_forward``);
* GELU: identity rule (``identity_rule_implicit``);
* attention: the uniform rule on its two products: the gradient reaching q and k is
  divided by 4 and the one reaching v by 2 (``divide_gradient``, as lxt's attention
  wrapper does); softmax by its own gradient, which in Gradient x Input *is* AttnLRP's
  softmax rule;
* Linear, the patch-embedding Conv2d, sums and means: their gradient (the epsilon rule
  with epsilon -> 0).

lxt's own entry point (``monkey_patch``) patches classes of a whole library for good; here
the same rules are bound to the modules of one model copy and removed on exit. lxt's rules
module is loaded from its file (:func:`lxt_rules`): importing the ``lxt.efficient`` package
imports every transformers model lxt supports (about 10 s), and with transformers 5 that
import fails (lxt 2.1 reads ``transformers.modeling_attn_mask_utils``, removed in 5.0).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import MethodType, ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.api import Batch, Site, capture, per_image
from bench.compute.units import is_attention

CHUNK = 64


@functools.cache
def lxt_rules() -> ModuleType:
    """``lxt.efficient.rules`` (identity_rule_implicit, divide_gradient, stop_gradient),
    loaded from lxt's installed file without running the ``lxt.efficient`` package."""
    spec = importlib.util.find_spec("lxt")
    if spec is None or spec.origin is None:
        raise ImportError("lrp-attn needs lxt (pip install lxt)")
    path = Path(spec.origin).parent / "efficient" / "rules.py"
    loaded = importlib.util.spec_from_file_location("_xprune_lxt_rules", path)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def layer_norm_forward(self: nn.Module, x: Tensor) -> Tensor:
    """LayerNorm under the identity rule: lxt's ``layer_norm_forward`` (std detached)."""
    mean = x.mean(dim=-1, keepdim=True)
    std = (((x - mean) ** 2).mean(dim=-1, keepdim=True) + self.eps).sqrt()
    y = (x - mean) / lxt_rules().stop_gradient(std)
    y = y * self.weight if self.weight is not None else y
    return y + self.bias if self.bias is not None else y


def attention_forward(self: nn.Module, x: Tensor, attn_mask: Tensor | None = None,
                      **_: object) -> Tensor:
    """timm's ``Attention.forward`` with AttnLRP's uniform rule on q, k and v."""
    b, n, _ = x.shape
    qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = self.q_norm(q), self.k_norm(k)
    divide = lxt_rules().divide_gradient
    q, k, v = divide(q, 4), divide(k, 4), divide(v, 2)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    return self.proj_drop(self.proj(self.norm(out.transpose(1, 2).reshape(b, n, -1))))


def gelu_forward(self: nn.Module, x: Tensor) -> Tensor:
    """GELU under the identity rule."""
    return lxt_rules().identity_rule_implicit(type(self).forward.__get__(self), x)


def _rule_for(module: nn.Module):
    if isinstance(module, nn.LayerNorm):
        return layer_norm_forward
    if isinstance(module, nn.GELU):
        return gelu_forward
    return attention_forward if is_attention(module) else None


@contextlib.contextmanager
def attnlrp_rules(model: nn.Module) -> Iterator[nn.Module]:
    """Bind the AttnLRP forwards to ``model``'s LayerNorms, GELUs and attention modules;
    every one is removed on exit, also on error."""
    patched = []
    try:
        for module in model.modules():
            rule = _rule_for(module)
            if rule is not None:
                module.forward = MethodType(rule, module)
                patched.append(module)
        yield model
    finally:
        for module in patched:
            del module.forward


def relevance(model: nn.Module, sites: Sequence[Site], batch: Batch,
              chunk: int = CHUNK) -> dict[str, Tensor]:
    """Signed AttnLRP relevance per image and unit, (N, C), at every site's output (a channel
    site: its neurons summed over tokens; a head site: each head summed over tokens and head
    dimensions), for a one-hot seed at each image's true class."""
    found: dict[str, list[Tensor]] = {site.name: [] for site in sites}
    with attnlrp_rules(model), capture(model, sites) as seen:
        for part in batch.chunks(chunk):
            x = part.x.clone().requires_grad_(True)
            logits = model(x)
            torch.autograd.grad(logits, x, grad_outputs=part.target_mask())
            for site in sites:
                found[site.name].append(per_image(seen.outputs[site.name].detach()
                                                  * seen.grad(site.name)))
    return {name: torch.cat(parts) for name, parts in found.items()}
