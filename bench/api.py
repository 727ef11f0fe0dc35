"""The public plugin API: everything a method plugin may use, and nothing else.

A method only *scores*: given a model, its prunable sites and a reference batch, it returns
one real-valued importance per unit (higher = keep). Which units exist, how scores become a
pruning decision, and how the model is cut, recovered and measured belong to the engine, so
that two methods differ in nothing but their scores.

A plugin is a subclass of :class:`Method` with declarative attributes and one ``score``::

    class Magnitude(Method):
        name = "magnitude"
        family = "magnitude"
        description = "L1 norm of each output channel's weights; |w| per weight"
        reference = "Li et al. 2017, https://arxiv.org/abs/1608.08710"
        granularities = ("channel", "weight")
        needs_data = False

        def score(self, model, sites, batch):
            return {s.name: s.weight.abs().flatten(1).sum(1) if s.granularity == "channel"
                    else s.weight.abs() for s in sites}

The engine hands the plugin a private copy of the model (eval mode, in-place activations
switched off), so hooks or edits a plugin leaves behind cannot leak into the benchmark.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field
from typing import ClassVar, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from bench.core.axes import Granularity, TaskType

GRANULARITIES: tuple[str, ...] = tuple(g.value for g in Granularity)
MULTI_LABEL = TaskType.MULTI_LABEL

__all__ = [
    "GRANULARITIES",
    "Batch",
    "Capture",
    "Method",
    "Site",
    "capture",
    "per_channel",
    "per_image",
]


@dataclass(frozen=True, eq=False)
class Site:
    """One prunable layer (a Conv2d or a hidden Linear) or attention module at one granularity.

    ``channel`` units are the layer's output channels / neurons, scored with shape
    ``(out_channels,)``; ``weight`` units are its individual weights, scored with the weight's
    shape. The classifier (the model's last Linear) is never a site. ``head`` sites are
    attention modules (timm's layout: ``num_heads``, a fused ``qkv`` Linear, ``proj``),
    scored with shape ``(num_heads,)``; a head's *output* is its slice of ``proj``'s input.
    """

    name: str
    module: nn.Module
    granularity: str

    @property
    def weight(self) -> Tensor:
        """The unit-major weight: a head site's ``qkv`` weight as (heads, 3, head_dim, dim)."""
        if self.is_head:
            qkv = self.module.qkv.weight
            return qkv.view(3, self.module.num_heads, -1, qkv.shape[1]).transpose(0, 1)
        return self.module.weight

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape a score tensor for this site must have."""
        if self.is_head:
            return (self.module.num_heads,)
        if self.granularity == "channel":
            return (self.module.weight.shape[0],)
        return tuple(self.module.weight.shape)

    @property
    def is_conv(self) -> bool:
        return isinstance(self.module, nn.Conv2d)

    @property
    def is_head(self) -> bool:
        return self.granularity == "head"


@dataclass(frozen=True, eq=False)
class Batch:
    """The reference set a method scores on, with the task's semantics attached.

    ``x``: images (N, C, H, W), normalised as in training. ``y``: class indices (N,) for
    single-label tasks, or a float 0/1 matrix (N, L) for multi-label tasks.
    """

    x: Tensor
    y: Tensor
    task: str
    n_classes: int

    @property
    def multi_label(self) -> bool:
        return self.task == MULTI_LABEL

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def loss(self, logits: Tensor) -> Tensor:
        """The training loss of the task: cross-entropy, or BCE-with-logits for multi-label."""
        if self.multi_label:
            return nn.functional.binary_cross_entropy_with_logits(logits, self.y.float())
        return nn.functional.cross_entropy(logits, self.y.long())

    def target_mask(self) -> Tensor:
        """(N, K) 0/1 seed selecting the true class of each image (all positive labels if multi-label)."""
        if self.multi_label:
            return self.y.float()
        return nn.functional.one_hot(self.y.long(), self.n_classes).float()

    def target_logits(self, logits: Tensor) -> Tensor:
        """Sum over the batch of the true-class logits: the scalar attributions explain."""
        return (logits * self.target_mask()).sum()

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        return Batch(self.x.to(device), self.y.to(device), self.task, self.n_classes)

    def chunks(self, size: int = 64) -> Iterator[Batch]:
        """Split into sub-batches of at most ``size`` images (bounds peak memory)."""
        for start in range(0, len(self), size):
            yield Batch(self.x[start:start + size], self.y[start:start + size],
                        self.task, self.n_classes)


class Method:
    """Base class of attribution/pruning-criterion plugins. Constructors take no arguments."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    # ``head`` is opt-in: a plugin scores attention heads only if it says so.
    granularities: ClassVar[tuple[str, ...]] = ("channel", "weight")
    # The backbone architectures (``bench.core.spec.ARCHITECTURES`` values: "cnn", "transformer")
    # the method can score; None = any. Cells of other backbones are never planned, and the
    # leaderboard shows them as "not applicable".
    architectures: ClassVar[tuple[str, ...] | None] = None
    needs_data: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = False
    # Whether the scores claim to measure each unit's effect on the output: such methods must
    # rank units that cannot change the output at the bottom (``xprune check``'s soundness
    # stage). Set False for criteria that only look at weights or activations.
    effect_based: ClassVar[bool] = True

    def score(self, model: nn.Module, sites: Sequence[Site], batch: Batch) -> Mapping[str, Tensor]:
        """Return ``{site.name: scores}``, each shaped ``site.shape``; higher means keep."""
        raise NotImplementedError(f"{type(self).__name__} does not implement score()")


@dataclass
class Capture:
    """Inputs, outputs and output-gradients of the site modules during the last forward pass.

    Outputs are channel-first, (N, C, ...): a conv's (N, C, H, W); a Linear's (N, C), or
    (N, C, T) for token sequences (a transformer's (N, T, C) output, transposed); a head
    site's (N, heads, T, head_dim). Each is the tensor the forward pass continues from, so
    gradients with respect to it are the gradients at that layer.
    """

    inputs: dict[str, Tensor] = field(default_factory=dict)
    outputs: dict[str, Tensor] = field(default_factory=dict)
    grads: dict[str, Tensor] = field(default_factory=dict)

    def grad(self, name: str) -> Tensor:
        """Gradient reaching the site's output in the last backward pass (zeros if none).

        Recorded by a tensor hook, so it works for ``loss.backward()``, ``torch.autograd.grad``
        and modified backward passes (zennit's LRP rules) alike.
        """
        grad = self.grads.get(name)
        return grad if grad is not None else torch.zeros_like(self.outputs[name])


@contextlib.contextmanager
def capture(model: nn.Module, sites: Sequence[Site]) -> Iterator[Capture]:
    """Record each site module's input, output and output-gradient on every forward.

    The hooks are removed when the block exits, also on error.
    """
    del model  # sites already point into the model; the argument documents the scope
    record = Capture()
    handles = []
    # The gradient hook lives on the output tensor, which the record holds: a strong
    # reference back to the record would make a cycle that keeps every forward graph alive
    # until Python's cycle collector happens to run (gigabytes over an IG path).
    weak_record = weakref.ref(record)

    def hook_for(name: str):
        def store_grad(grad: Tensor) -> None:
            alive = weak_record()
            if alive is not None:
                alive.grads[name] = grad.detach()

        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            record.inputs[name] = args[0]
            record.outputs[name] = output
            record.grads.pop(name, None)
            if output.requires_grad:
                output.register_hook(store_grad)
        return hook

    def tokens_hook_for(name: str):
        hook = hook_for(name)

        def tokens(module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
            if output.ndim != 3:  # only token sequences are re-laid out
                return hook(module, args, output)
            channel_first = output.transpose(1, 2)
            hook(module, args, channel_first)
            return channel_first.transpose(1, 2)
        return tokens

    def heads_hook_for(site: Site):
        store = hook_for(site.name)

        def heads(proj: nn.Module, args: tuple) -> tuple:
            x = args[0]
            n, t, _ = x.shape
            per_head = x.view(n, t, site.module.num_heads, -1).transpose(1, 2)
            inputs = record.inputs.get(site.name)
            store(site.module, (inputs,), per_head)
            return (per_head.transpose(1, 2).reshape(n, t, -1), *args[1:])
        return heads

    def attention_input_for(name: str):
        def keep(module: nn.Module, args: tuple) -> None:
            record.inputs[name] = args[0]
        return keep

    try:
        for site in sites:
            if site.is_head:
                handles.append(site.module.register_forward_pre_hook(
                    attention_input_for(site.name)))
                handles.append(site.module.proj.register_forward_pre_hook(heads_hook_for(site)))
            elif isinstance(site.module, nn.Linear):
                handles.append(site.module.register_forward_hook(tokens_hook_for(site.name)))
            else:
                handles.append(site.module.register_forward_hook(hook_for(site.name)))
        yield record
    finally:
        for handle in handles:
            handle.remove()


def per_channel(t: Tensor) -> Tensor:
    """Sum a (N, C, ...) tensor over every axis except the channel axis 1 -> shape (C,)."""
    return t.transpose(0, 1).reshape(t.shape[1], -1).sum(1)


def per_image(t: Tensor) -> Tensor:
    """Sum a (N, C, ...) tensor over its positions -> shape (N, C), one total per image and channel."""
    return t.flatten(2).sum(2) if t.ndim > 2 else t
