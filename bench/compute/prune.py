"""Turning scores into a smaller model: the pruning policy and the two mechanisms.

* ``channel``: torch-pruning removes output channels / neurons for real. Its dependency
  graph keeps coupled layers consistent (ResNet's residual adds form one group); the
  method's scores reach each group through :class:`ScoreImportance`. The selection itself
  is :func:`select_lowest`, so the achieved sparsity is exact (torch-pruning's own global
  mode silently skips a layer that would lose too much, missing the target).
* ``weight``: unstructured masks through ``torch.nn.utils.prune`` (kept during fine-tuning,
  made permanent by :func:`finalize`).
* ``head``: torch-pruning removes whole attention heads: the heads' input channels of the
  output projection, which its dependency graph couples to their q, k and v rows of the
  fused ``qkv`` projection (through the reshape / unbind / attention ops it traces).

Scopes: ``layer`` removes the same fraction of every layer; ``global`` ranks all units at
once after L1-normalising each layer's scores (Yeom et al. 2021). No layer ever loses all
its units, and the classifier is never pruned. Units with equal scores are ordered by a
permutation seeded with the cell's seed (never by position), and the share of units whose
fate that tie-break decided is reported.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import Tensor, nn
from torch.nn.utils import prune as torch_prune

from bench.compute.units import classifier_name, find_sites, is_attention

TIE_SEED = 0x7135  # offsets the cell seed, so tie-breaking and random scores use different streams


@dataclass
class Pruned:
    """A pruned copy of the model, its weight masks (if any) and what was achieved."""

    model: nn.Module
    masks: dict[str, Tensor] = field(default_factory=dict)
    achieved_sparsity: float = 0.0
    seconds: float = 0.0
    tie_share: float = 0.0


def _l1_normalised(scores: Tensor) -> Tensor:
    return scores / scores.abs().sum().clamp_min(1e-12)


@dataclass(frozen=True)
class Selection:
    """Which units to remove from each layer, and how many were decided by the tie-break.

    ``tied`` counts the units of every tie group that straddles a cut (some of its members
    removed, some kept): their fate was decided by the seeded permutation, not by the scores.
    """

    indices: list[Tensor]
    tied: int
    total: int

    @property
    def tie_share(self) -> float:
        return self.tied / self.total if self.total else 0.0


def ascending(values: Tensor, generator: torch.Generator) -> Tensor:
    """Indices of ``values`` (1-D) from lowest to highest; equal values in a seeded random order.

    Never by position: a stable sort alone would always remove the first channels/weights.
    """
    perm = torch.randperm(values.numel(), generator=generator)
    return perm[torch.argsort(values[perm], stable=True)]


def _straddling(values: Tensor, removed: Tensor) -> int:
    """Size of the tie group at the cut if it has members on both sides, else 0."""
    if not len(removed) or len(removed) == values.numel():
        return 0
    chosen = torch.zeros(values.numel(), dtype=torch.bool)
    chosen[removed] = True
    group = values == values[removed].max()
    return int(group.sum()) if bool((group & ~chosen).any()) else 0


def select_lowest(values: list[Tensor], scope: str, sparsity: float, seed: int = 0) -> Selection:
    """Flat indices of the units to remove from each layer (the policy, in one place).

    ``layer``: the lowest ``floor(sparsity * n)`` of every layer. ``global``: the lowest
    ``floor(sparsity * total)`` of all layers ranked together after L1-normalising each
    layer. Either way every layer keeps at least its best unit. Ties are broken by a
    permutation seeded with ``seed``.
    """
    generator = torch.Generator().manual_seed(TIE_SEED + seed)
    flats = [v.detach().flatten().float() for v in values]
    sizes = [v.numel() for v in flats]
    if scope == "layer":
        chosen = [ascending(v, generator)[:min(int(sparsity * n), n - 1)]
                  for v, n in zip(flats, sizes)]
        tied = sum(_straddling(v, idx) for v, idx in zip(flats, chosen))
        return Selection(chosen, tied, sum(sizes))
    flat = torch.cat([_l1_normalised(v) for v in flats])
    layer_of = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    order = ascending(flat, generator)
    layer_sorted = layer_of[order]
    rank = torch.empty_like(order)  # position of each sorted unit within its own layer
    for layer, n in enumerate(sizes):
        rank[layer_sorted == layer] = torch.arange(n)
    eligible = order[rank < (torch.tensor(sizes) - 1)[layer_sorted]]
    removed = eligible[:int(sparsity * flat.numel())]
    offsets = [0, *torch.tensor(sizes).cumsum(0).tolist()]
    chosen = [removed[(removed >= lo) & (removed < hi)] - lo for lo, hi in zip(offsets, offsets[1:])]
    return Selection(chosen, _straddling(flat, removed), flat.numel())


class ScoreImportance(tp.importance.Importance):
    """Feeds precomputed per-channel scores into torch-pruning's dependency groups.

    Every member layer of a group that has scores contributes its L1-normalised scores at
    the group's channels; the group's importance is their mean (for an uncoupled layer,
    just its own normalised scores). ResNet's residual-coupled convs share one group.
    """

    def __init__(self, scores: dict[str, Tensor], names: dict[nn.Module, str]) -> None:
        self.scores = scores
        self.names = names

    def __call__(self, group) -> Tensor | None:
        parts = []
        for dep, idxs in group:
            name = self.names.get(dep.target.module)
            if name in self.scores and dep.handler in (tp.prune_conv_out_channels,
                                                       tp.prune_linear_out_channels):
                parts.append(_l1_normalised(self.scores[name].float())[torch.as_tensor(idxs)])
        return torch.stack(parts).mean(0) if parts else None


def dependency_graph(model: nn.Module, example: Tensor) -> tp.DependencyGraph:
    """torch-pruning's dependency graph of ``model``, traced on one example image.

    A transformer's position embedding is a bare parameter, which torch-pruning would prune
    along its last dimension (the embedding width: never pruned here) and warns about on
    every build; for transformers that warning is silenced (``verbose=False``)."""
    quiet = any(is_attention(m) for m in model.modules())
    return tp.DependencyGraph().build_dependency(model, example_inputs=example[:1],
                                                 verbose=not quiet)


def prune_channels(model: nn.Module, scores: dict[str, Tensor], scope: str, sparsity: float,
                   example: Tensor, seed: int = 0) -> Pruned:
    """Remove the selected channels for real through torch-pruning's dependency graph."""
    start = time.perf_counter()
    model = copy.deepcopy(model).eval()
    head = dict(model.named_modules())[classifier_name(model)]
    before = {s.name: s.shape[0] for s in find_sites(model, "channel")}
    graph = dependency_graph(model, example)
    importance = ScoreImportance(scores, {m: n for n, m in model.named_modules()})
    groups = [(g, imp) for g in graph.get_all_groups(ignored_layers=[head],
                                                     root_module_types=[nn.Conv2d, nn.Linear])
              if (imp := importance(g)) is not None]
    plan = select_lowest([imp for _, imp in groups], scope, sparsity, seed)
    for (group, _), idxs in zip(groups, plan.indices):
        if len(idxs):
            root = group[0].dep
            graph.get_pruning_group(root.target.module, root.handler, idxs.tolist()).prune()
    after = {s.name: s.shape[0] for s in find_sites(model, "channel")}
    removed = sum(before[n] - after[n] for n in before)
    return Pruned(model, {}, removed / sum(before.values()), time.perf_counter() - start,
                  plan.tie_share)


def prune_heads(model: nn.Module, scores: dict[str, Tensor], scope: str, sparsity: float,
                example: Tensor, seed: int = 0) -> Pruned:
    """Remove the selected attention heads for real (torch-pruning, qkv/proj coupled).

    Heads are chosen by :func:`select_lowest` on the head scores; for each attention module
    the chosen heads' slices of ``proj``'s input are the root of one torch-pruning group,
    which also removes their q, k and v rows of ``qkv``. ``num_heads`` (and timm's
    ``attn_dim``) are updated so the module's forward reshapes to the heads that are left.
    """
    start = time.perf_counter()
    model = copy.deepcopy(model).eval()
    sites = find_sites(model, "head")
    total = sum(s.shape[0] for s in sites)
    plan = select_lowest([scores[s.name] for s in sites], scope, sparsity, seed)
    graph = dependency_graph(model, example)
    for site, heads in zip(sites, plan.indices):
        attn = site.module
        if not len(heads):
            continue
        size = attn.proj.in_features // attn.num_heads
        idxs = torch.cat([torch.arange(h * size, (h + 1) * size) for h in sorted(heads.tolist())])
        graph.get_pruning_group(attn.proj, tp.prune_linear_in_channels, idxs.tolist()).prune()
        attn.num_heads -= len(heads)
        if hasattr(attn, "attn_dim"):
            attn.attn_dim = attn.num_heads * size
    removed = total - sum(s.shape[0] for s in find_sites(model, "head"))
    return Pruned(model, {}, removed / total, time.perf_counter() - start, plan.tie_share)


def weight_masks(scores: dict[str, Tensor], scope: str, sparsity: float,
                 seed: int = 0) -> tuple[dict[str, Tensor], Selection]:
    """0/1 masks removing the selected weights of every site, and the selection behind them."""
    plan = select_lowest(list(scores.values()), scope, sparsity, seed)
    masks = {}
    for (name, s), idxs in zip(scores.items(), plan.indices):
        mask = torch.ones(s.numel())
        mask[idxs] = 0.0
        masks[name] = mask.view_as(s)
    return masks, plan


def prune_weights(model: nn.Module, scores: dict[str, Tensor], scope: str,
                  sparsity: float, seed: int = 0) -> Pruned:
    """Mask the lowest-scoring weights; the masks stay attached until :func:`finalize`."""
    start = time.perf_counter()
    model = copy.deepcopy(model).eval()
    masks, plan = weight_masks(scores, scope, sparsity, seed)
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        torch_prune.custom_from_mask(modules[name], "weight",
                                     mask.to(modules[name].weight.device))
    total = sum(m.numel() for m in masks.values())
    zeros = sum(int((m == 0).sum()) for m in masks.values())
    return Pruned(model, masks, zeros / total, time.perf_counter() - start, plan.tie_share)


def prune(model: nn.Module, scores: dict[str, Tensor], granularity: str, scope: str,
          sparsity: float, example: Tensor, seed: int = 0) -> Pruned:
    """Prune a copy of ``model``; the original is left untouched. ``seed`` breaks score ties."""
    if granularity == "channel":
        return prune_channels(model, scores, scope, sparsity, example, seed)
    if granularity == "head":
        return prune_heads(model, scores, scope, sparsity, example, seed)
    return prune_weights(model, scores, scope, sparsity, seed)


def finalize(pruned: Pruned) -> nn.Module:
    """Make weight masks permanent (plain parameters with zeros); no-op for channel pruning."""
    modules = dict(pruned.model.named_modules())
    for name in pruned.masks:
        if torch_prune.is_pruned(modules[name]):
            torch_prune.remove(modules[name], "weight")
    return pruned.model
