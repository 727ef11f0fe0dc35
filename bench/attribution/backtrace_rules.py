"""DL-Backtrace propagation rules (Sankarapu et al. 2024, arXiv:2411.12643), one per layer kind.

Relevance travels as one tensor shaped ``(S, N, ...)``: ``S = 1`` stream in default mode,
``S = 2`` streams ``(R+, R-)`` in contrast mode. A rule reads one :class:`Op` (the recorded
inputs of a layer and the relevance at its output) and returns a :class:`Flow` (relevance
for each tensor input, plus the relevance carried by each weight for Linear/Conv2d).

Variants followed (the DL-Backtrace v0.1.x releases, the current ones):

* Linear / Conv2d, default mode: ``R_{i<-j} = R_j |z_ij| / (P_j + N_j + |b_j|)``; conv patches
  overlap additively and the zero-padding border is dropped.
* Linear / Conv2d, contrast mode: the sign of ``t_j = P_j - N_j + b_j`` picks the dominant
  side, which gets ``max(R+_j, R-_j)``, the other side ``min``; within a side shares are
  ``|z_ij| / P_j`` (or ``/ N_j``) and stay in their stream; one-sided units send both streams
  to their only side; ``t_j = 0`` or no contributor propagates nothing.
* MaxPool2d: all of a window's relevance to its maximum, ties split evenly (the official
  package's rule; the v0.1.x docs' uniform split is not what its code does).
* AvgPool2d / AdaptiveAvgPool2d (incl. global pooling): uniform split, i.e. ``R_c / (H*W)``.
* Residual sum ``y = x1 + x2``: ``R_y / 2`` to each summand (``R_y / k`` for k tensors).
* BatchNorm, ReLU, Dropout, Identity: identity; Flatten / view / reshape: reshape back.

Every non-contraction rule is applied to each stream separately, so contrast mode conserves
``sum(R+) + sum(R-)`` through every layer.
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.modules.utils import _pair

from bench.core.errors import PluginError

Contraction = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True, eq=False)
class Op:
    """One traced layer being back-traced: everything a rule may read."""

    name: str
    module: nn.Module | None
    inputs: list[Tensor]  # the recorded tensor arguments, in call order
    rel: Tensor  # (S, N, ...) relevance arriving at the layer's output
    kwargs: dict
    contrast: bool
    want_weight: bool
    want_input: bool = True  # False at the model's input: nothing reads relevance there


@dataclass(frozen=True, eq=False)
class Flow:
    """What a rule hands back: relevance per tensor input (S, N, ...) and per weight.

    ``weight`` has the weight's shape: the relevance each weight carries, summed over images
    and output positions (``R+`` minus ``R-`` share in contrast mode, the score sites use).
    """

    inputs: list[Tensor | None]
    weight: Tensor | None = None


Rule = Callable[[Op], Flow]


def passthrough(op: Op) -> Flow:
    """Activations, BatchNorm (v0.1.x identity), Dropout, Identity: relevance passes unchanged."""
    return Flow([op.rel])


def reshape_back(op: Op) -> Flow:
    """Flatten / view / reshape: give each input cell the relevance of the cell it became."""
    return Flow([op.rel.reshape(op.rel.shape[0], *op.inputs[0].shape)])


def split_even(op: Op) -> Flow:
    """Residual sum (v0.1.x): each of the k summands receives R_y / k."""
    shape = op.rel.shape[1:]
    if op.kwargs or any(x.shape != shape for x in op.inputs):
        raise PluginError(f"backtrace: sum {op.name!r} broadcasts or scales its operands; "
                          "only plain same-shape sums are supported")
    share = op.rel / len(op.inputs)
    return Flow([share] * len(op.inputs))


def _split(backward: Callable[[Tensor, Tensor], Tensor], x: Tensor, rel: Tensor) -> Tensor:
    """Run a pooling's backward kernel (its adjoint: the uniform split) on every stream."""
    grad = rel.flatten(0, 1)
    shape_only = x.new_zeros(()).expand(grad.shape[0], *x.shape[1:])
    return backward(grad, shape_only).view(rel.shape[0], *x.shape)


def _avg_split(op: Op, count_include_pad: bool, divisor: int | None) -> Flow:
    """Uniform split over each window of a (max or average) 2-D pooling's geometry."""
    m = op.module
    geometry = [_pair(v) for v in (m.kernel_size, m.stride, m.padding)]
    split = functools.partial(torch.ops.aten.avg_pool2d_backward, kernel_size=geometry[0],
                              stride=geometry[1], padding=geometry[2], ceil_mode=m.ceil_mode,
                              count_include_pad=count_include_pad, divisor_override=divisor)
    return Flow([_split(split, op.inputs[0], op.rel)])


def avg_pool(op: Op) -> Flow:
    """AvgPool2d (v0.1.x): each window's relevance split uniformly, as the layer averages."""
    return _avg_split(op, op.module.count_include_pad, op.module.divisor_override)


def adaptive_avg_pool(op: Op) -> Flow:
    """AdaptiveAvgPool2d (v0.1.x), global pooling included: uniform split, R_c / (H*W)."""
    return Flow([_split(torch.ops.aten._adaptive_avg_pool2d_backward, op.inputs[0], op.rel)])


def max_pool_winner(op: Op) -> Flow:
    """MaxPool2d: each window's relevance goes to the cell(s) holding its maximum, ties split
    evenly; overlapping windows add up, padding receives nothing."""
    m = op.module
    if _pair(m.dilation) != (1, 1) or m.return_indices:
        raise PluginError(f"backtrace: MaxPool2d {op.name!r} with dilation or return_indices "
                          "is not supported")
    (kh, kw), (sh, sw), (ph, pw) = (_pair(v) for v in (m.kernel_size, m.stride, m.padding))
    x, rel = op.inputs[0], op.rel
    n, c, h, w = x.shape
    oh, ow = rel.shape[-2:]
    full = ((oh - 1) * sh + kh, (ow - 1) * sw + kw)  # covers ceil_mode's partial windows
    padded = F.pad(x, (pw, max(pw, full[1] - w - pw), ph, max(ph, full[0] - h - ph)),
                   value=-math.inf)
    size = padded.shape[-2:]
    cols = F.unfold(padded.reshape(n * c, 1, *size), (kh, kw), stride=(sh, sw))  # (NC, k, L)
    winners = (cols == cols.amax(1, keepdim=True)).to(rel.dtype)
    shares = winners / winners.sum(1, keepdim=True)
    spread = shares.unsqueeze(0) * rel.reshape(rel.shape[0], n * c, 1, oh * ow)
    back = F.fold(spread.flatten(0, 1), size, (kh, kw), stride=(sh, sw))
    return Flow([back.view(rel.shape[0], n, c, *size)[..., ph:ph + h, pw:pw + w]])


def _bias(module: nn.Module, like: Tensor) -> Tensor:
    """The layer's bias broadcast against its output (zeros if it has none)."""
    if module.bias is None:
        return torch.zeros((), dtype=like.dtype)
    return module.bias.detach().view(-1, *[1] * (like.ndim - 2))


def _carried(outputs: tuple[Tensor, ...], leaves: list[Tensor], shares: tuple[Tensor, ...]) -> Tensor:
    """Relevance the (non-negative) leaves carry: leaf * VJP of ``outputs`` against ``shares``."""
    grads = torch.autograd.grad(outputs, leaves, shares, retain_graph=True)
    return sum(leaf.detach() * g for leaf, g in zip(leaves, grads))


def _inverse(x: Tensor) -> Tensor:
    """1 / x where x > 0, else 0: a side without contributors takes no relevance.

    Written arithmetically (no ``torch.where``, which is ~40x slower on CPU here).
    """
    return x.reciprocal().nan_to_num_(posinf=0.0)


def _default(op: Op, f: Contraction) -> Flow:
    """Default dense rule: R_i = |a_i| sum_j |w_ji| R_j / (P_j + N_j + |b_j|), by one VJP."""
    a = op.inputs[0].abs().requires_grad_(op.want_input)
    w = op.module.weight.detach().abs().requires_grad_(op.want_weight)
    with torch.enable_grad():
        total = f(a, w)  # P_j + N_j, since |z_ij| = |a_i| |w_ji|
    denom = total.detach() + _bias(op.module, total).abs()
    scale = op.rel[0] * _inverse(denom)  # denom = 0: every |z_ij| is 0, nothing flows
    weight = _carried((total,), [w], (scale,)) if op.want_weight else None
    return Flow([_carried((total,), [a], (scale,)).unsqueeze(0) if op.want_input else None], weight)


def _contrast_shares(pos: Tensor, neg: Tensor, t: Tensor, rel: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Per stream, the relevance per unit of P_j and of N_j that the contrast rule hands out.

    ``turn`` is +1 where the + stream goes to the positive side (t > 0 and R+ >= R-, or t < 0
    and R+ < R-), -1 where it goes to the negative side, 0 where t = 0. A one-sided unit sends
    both streams to both sides: the empty side's inverse is 0.
    """
    inv_p, inv_n = _inverse(pos), _inverse(neg)
    one_sided = (inv_p * inv_n).sign_().neg_().add_(1)
    turn = (rel[0] - rel[1]).sign_().add_(0.5).sign_().mul_(t.sign())  # tie: R+ counts as max
    plus_pos, plus_neg = turn.relu(), turn.neg_().relu_()  # in-place ops: fewer big temporaries
    same = torch.addcmul(plus_pos, one_sided, plus_neg)  # + to P side, or - to N side
    cross = torch.addcmul(plus_neg, one_sided, plus_pos)  # + to N side, or - to P side
    return [(same.mul(inv_p).mul_(rel[0]), cross.mul(inv_n).mul_(rel[0])),
            (cross.mul_(inv_p).mul_(rel[1]), same.mul_(inv_n).mul_(rel[1]))]


def _contrast(op: Op, f: Contraction) -> Flow:
    """Contrast dense rule: P_j, N_j from sign-split inputs and weights, one VJP per stream."""
    a, w = op.inputs[0], op.module.weight.detach()
    xs = [a.clamp(min=0), (-a).clamp(min=0)]
    xs = [x.requires_grad_(op.want_input) for x in (xs if bool(xs[1].any()) else xs[:1])]
    ws = [v.requires_grad_(op.want_weight) for v in (w.clamp(min=0), (-w).clamp(min=0))]
    with torch.enable_grad():  # x+ w+ and x- w- are positive z, x+ w- and x- w+ negative z
        pn = (f(xs[0], ws[0]), f(xs[0], ws[1]))
        if len(xs) == 2:
            pn = (pn[0] + f(xs[1], ws[1]), pn[1] + f(xs[1], ws[0]))
    t = pn[0].detach() - pn[1].detach() + _bias(op.module, pn[0])
    shares = _contrast_shares(pn[0].detach(), pn[1].detach(), t, op.rel)
    inputs = torch.stack([_carried(pn, xs, s) for s in shares]) if op.want_input else None
    # A weight's score is linear in the shares: one VJP of (R+ share - R- share).
    diff = tuple(plus - minus for plus, minus in zip(*shares))
    return Flow([inputs], _carried(pn, ws, diff) if op.want_weight else None)


def _contract(op: Op, f: Contraction) -> Flow:
    """Dispatch a Linear/Conv2d contraction to the rule of the current mode."""
    return (_contrast if op.contrast else _default)(op, f)


def linear(op: Op) -> Flow:
    """nn.Linear: dense contraction over input features."""
    return _contract(op, F.linear)


def conv2d(op: Op) -> Flow:
    """nn.Conv2d: dense contraction over each output position's receptive-field patch."""
    m = op.module
    if m.padding_mode != "zeros":
        raise PluginError(f"backtrace: Conv2d {op.name!r} uses padding_mode={m.padding_mode!r}; "
                          "only zero padding is supported")
    f = functools.partial(F.conv2d, stride=m.stride, padding=m.padding, dilation=m.dilation,
                          groups=m.groups)
    return _contract(op, f)


MODULE_RULES: dict[type[nn.Module], Rule] = {
    nn.Linear: linear,
    nn.Conv2d: conv2d,
    nn.BatchNorm1d: passthrough,
    nn.BatchNorm2d: passthrough,
    nn.ReLU: passthrough,
    nn.Dropout: passthrough,
    nn.Identity: passthrough,
    nn.Flatten: reshape_back,
    nn.MaxPool2d: max_pool_winner,
    nn.AvgPool2d: avg_pool,
    nn.AdaptiveAvgPool2d: adaptive_avg_pool,
}

FUNCTION_RULES: dict[Callable, Rule] = {
    operator.add: split_even,
    operator.iadd: split_even,
    torch.add: split_even,
    torch.flatten: reshape_back,
    torch.relu: passthrough,
    F.relu: passthrough,
    F.dropout: passthrough,
}

METHOD_RULES: dict[str, Rule] = {
    "add": split_even,
    "flatten": reshape_back,
    "view": reshape_back,
    "reshape": reshape_back,
    "relu": passthrough,
}
