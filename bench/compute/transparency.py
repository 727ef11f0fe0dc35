"""Transparency after pruning: does the pruned model still explain itself like the dense one?

Given maps (N, H, W) from one reference explainer (bench.compute.explain) for the dense and the
pruned model on the same probe images, three metrics (defined in docs/transparency.md):

- ``spearman``: Spearman rank correlation of the two maps of an image (Pearson correlation
  of their average ranks), mean over images; 0 for an image where either map is constant.
- ``iou_top10``: intersection over union of the 10% most relevant pixels (highest signed
  relevance; ties broken by the lower pixel index, so exactly k = ceil(0.1 * H * W) pixels),
  mean over images.
- ``deletion_dense`` / ``deletion_pruned``: area under each model's deletion curve for its
  own maps: pixels are replaced by ``DELETION_BASELINE`` in order of decreasing relevance in
  ``DELETION_STEPS`` equal steps, tracking the target-class probability; trapezoid area over
  the removed fraction in [0, 1], mean over images. Lower = the map found the evidence faster.

All three are hand-written in vectorised torch. Quantus's PixelFlipping is as fast per
forward pass and gives the same curve where the definitions coincide (a test checks this), but
it differs in endpoints, area scale, tie order, RGB and multi-label handling; see
docs/transparency.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from bench.compute import device as devices
from bench.compute.explain import EXPLAINERS, reference_explainers
from bench.compute.units import scoring_copy

TOP_FRACTION = 0.1
DELETION_STEPS = 8
DELETION_BASELINE = 0.0  # in normalised units: mid-grey, the IG baseline too
DEFAULT_EXPLAINERS = ("lrp-epf", "ig")  # a CNN's (bench.compute.explain.reference_explainers)
FORWARD_CHUNK = 256


def average_ranks(maps: Tensor) -> Tensor:
    """Ranks 1..P of each image's pixels (N, P), ties sharing their average rank."""
    flat = maps.flatten(1).double()
    values, order = flat.sort(dim=1, stable=True)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[:, 1:] = values[:, 1:] != values[:, :-1]
    group = starts.cumsum(1) - 1                                  # tie-group id per sorted slot
    pos = torch.arange(1, flat.shape[1] + 1, dtype=torch.double).expand_as(flat)
    total = torch.zeros_like(flat).scatter_add_(1, group, pos)
    count = torch.zeros_like(flat).scatter_add_(1, group, torch.ones_like(flat))
    mean_rank = (total / count.clamp_min(1)).gather(1, group)
    return torch.empty_like(flat).scatter_(1, order, mean_rank)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Per-image Spearman correlation (N,) of two map batches; 0 where either map is constant."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    denom = (ra.square().sum(1) * rb.square().sum(1)).sqrt()
    rho = (ra * rb).sum(1) / denom.clamp_min(1e-300)
    return torch.where(denom > 0, rho, torch.zeros_like(rho)).float()


def top_mask(maps: Tensor, fraction: float = TOP_FRACTION) -> Tensor:
    """(N, P) bool: each image's ceil(fraction * P) highest pixels, ties to the lower index."""
    flat = maps.flatten(1)
    k = math.ceil(fraction * flat.shape[1])
    order = flat.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return torch.zeros_like(flat, dtype=torch.bool).scatter_(1, order, True)


def top_iou(a: Tensor, b: Tensor, fraction: float = TOP_FRACTION) -> Tensor:
    """Per-image IoU (N,) of the top-``fraction`` pixel sets of two map batches."""
    ma, mb = top_mask(a, fraction), top_mask(b, fraction)
    return ((ma & mb).sum(1) / (ma | mb).sum(1)).float()


@torch.no_grad()
def target_probability(model: nn.Module, x: Tensor, target: Tensor, multi_label: bool) -> Tensor:
    """Probability (N,) of each image's target: softmax, or sigmoid of its label for multi-label."""
    logits = torch.cat([model(x[i:i + FORWARD_CHUNK]) for i in range(0, len(x), FORWARD_CHUNK)])
    probs = torch.sigmoid(logits) if multi_label else torch.softmax(logits, 1)
    return probs.gather(1, target.reshape(-1, 1).long()).flatten()


def deletion_curves(model: nn.Module, x: Tensor, target: Tensor, maps: Mapping[str, Tensor],
                    multi_label: bool = False, steps: int = DELETION_STEPS,
                    baseline: float = DELETION_BASELINE) -> dict[str, Tensor]:
    """Target probability (N, steps + 1) as the most relevant pixels of each map are removed.

    Step s replaces the first floor(s * P / steps) pixels of the image's order (decreasing
    relevance, ties to the lower index), all channels, by ``baseline``. Steps 0 (intact) and
    ``steps`` (all removed) do not depend on the map; they are computed once for all maps.
    """
    n, pixels = len(x), x[0, 0].numel()
    model = scoring_copy(model)  # eval mode, and the caller's model is left as it was
    where = devices.of(model)
    x, target = x.to(where), target.to(where)
    removed = [s * pixels // steps for s in range(1, steps)]
    ends = target_probability(model, torch.cat([x, torch.full_like(x, baseline)]),
                              target.repeat(2), multi_label)
    curves = {}
    for name, m in maps.items():
        order = m.to(x.device).flatten(1).sort(dim=1, descending=True, stable=True).indices
        position = torch.empty_like(order).scatter_(
            1, order, torch.arange(pixels, device=x.device).expand_as(order))
        gone = torch.stack([position < r for r in removed]).view(len(removed), n, 1, *x.shape[2:])
        perturbed = torch.where(gone, torch.tensor(baseline, dtype=x.dtype, device=x.device),
                                x.unsqueeze(0))
        middle = target_probability(model, perturbed.flatten(0, 1), target.repeat(len(removed)),
                                    multi_label).view(len(removed), n)
        curves[name] = torch.cat([ends[:n, None], middle.T, ends[n:, None]], 1).cpu()
    return curves


def deletion_auc(curves: Tensor) -> Tensor:
    """Per-image area (N,) under deletion curves (N, K + 1) sampled at removed fraction s/K."""
    return torch.trapezoid(curves, dx=1.0 / (curves.shape[1] - 1), dim=1)


@dataclass(frozen=True)
class Explained:
    """One model on the probe set, per explainer: maps (N, H, W) and deletion curves (N, K+1)."""

    maps: dict[str, Tensor]
    deletion: dict[str, Tensor]


def explained(model: nn.Module, x: Tensor, target: Tensor,
              explainers: Sequence[str] = DEFAULT_EXPLAINERS,
              multi_label: bool = False) -> Explained:
    """Maps and deletion curves of ``model``: compute once per dense baseline, once per cell.

    They are computed on the model's device and returned on the CPU."""
    where = devices.of(model)
    x, target = x.to(where), target.to(where)
    maps = {name: EXPLAINERS.get(name)(model, x, target).cpu() for name in explainers}
    return Explained(maps, deletion_curves(model, x, target, maps, multi_label))


def compare(dense: Explained, pruned: Explained) -> dict[str, dict[str, float]]:
    """The JSON-ready metrics per explainer of a dense and a pruned model on the same images."""
    return {
        name: {
            "spearman": float(spearman(dense.maps[name], pruned_map).mean()),
            "iou_top10": float(top_iou(dense.maps[name], pruned_map).mean()),
            "deletion_dense": float(deletion_auc(dense.deletion[name]).mean()),
            "deletion_pruned": float(deletion_auc(pruned.deletion[name]).mean()),
        }
        for name, pruned_map in pruned.maps.items()
    }


@dataclass(frozen=True)
class Measurement:
    """The metrics of one cell and what produced them (cache ``dense``; keep a few maps)."""

    metrics: dict[str, dict[str, float]]
    dense: Explained
    pruned: Explained


def measure(dense: nn.Module, pruned: nn.Module, x: Tensor, target: Tensor,
            explainers: Sequence[str] = DEFAULT_EXPLAINERS, dense_ref: Explained | None = None,
            multi_label: bool = False) -> Measurement:
    """Transparency of a pruned model against its dense baseline, per reference explainer.

    ``dense_ref`` (from an earlier call's ``.dense`` or :func:`explained`) skips the dense
    model's maps and curves; it must come from the same images, targets and explainers.
    """
    if dense_ref is None:
        dense_ref = explained(dense, x, target, explainers, multi_label)
    missing = [name for name in explainers if name not in dense_ref.maps]
    if missing:
        raise ValueError(f"dense_ref has no maps for explainer(s) {', '.join(missing)}")
    if any(dense_ref.maps[name].shape != (len(x), *x.shape[2:]) for name in explainers):
        raise ValueError(f"dense_ref maps do not match the {len(x)} images given")
    after = explained(pruned, x, target, explainers, multi_label)
    return Measurement(compare(dense_ref, after), dense_ref, after)


def heatmap_png(images: Tensor, dense_maps: Tensor, pruned_maps: Mapping[float, Tensor],
                path: Path | str, dpi: int = 100) -> Path:
    """A PNG grid to look at: columns are images; rows the image, the dense map, pruned maps.

    ``images`` (N, C, H, W) in [-1, 1]; maps (N, H, W), one per sparsity in ``pruned_maps``
    (rows in increasing sparsity). Each map uses a diverging colormap (red = for the target,
    blue = against) centred at 0 and scaled by its own largest |value|, so the *pattern* is
    compared, not the magnitude (which pruning and recalibration change).
    """
    import numpy as np
    from matplotlib.backends.backend_agg import (
        FigureCanvasAgg,  # no pyplot state, no display
    )
    from matplotlib.figure import Figure
    from PIL import Image

    rows = [("image", None), ("dense", dense_maps)]
    rows += [(f"{s:.0%} pruned", m) for s, m in sorted(pruned_maps.items())]
    n = len(images)
    scale_height = 0.55  # inches below the grid: the colour scale and its words
    fig = Figure(figsize=(0.9 * n + 0.9, 0.9 * len(rows) + scale_height), dpi=dpi)
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, maps) in enumerate(rows):
        for i in range(n):
            ax = axes[r][i]
            ax.set_xticks([])
            ax.set_yticks([])
            if maps is None:
                img = (images[i].permute(1, 2, 0).clamp(-1, 1) + 1) / 2
                ax.imshow(img.squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1,
                          interpolation="nearest")
            else:
                scale = float(maps[i].abs().max()) or 1.0
                ax.imshow(maps[i].numpy(), cmap="bwr", vmin=-scale, vmax=scale,
                          interpolation="nearest")
        axes[r][0].set_ylabel(label, fontsize=7)
    height = 0.9 * len(rows) + scale_height
    fig.subplots_adjust(left=0.7 / (0.9 * n + 0.9), right=0.99, top=0.99,
                        bottom=scale_height / height, wspace=0.05, hspace=0.05)
    bar = fig.add_axes((0.7 / (0.9 * n + 0.9), 0.3 / height, 0.4, 0.1 / height))
    bar.imshow(np.linspace(-1, 1, 256)[None, :], cmap="bwr", vmin=-1, vmax=1, aspect="auto")
    bar.set_yticks([])
    bar.set_xticks([0, 127.5, 255], ["against", "0", "for the class"], fontsize=6)
    bar.tick_params(length=2, pad=1)
    fig.text(0.99, 0.35 / height, "each map scaled to\nits own largest |relevance|", fontsize=5,
             ha="right", va="center")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
    path = Path(path)
    rgb.quantize(colors=256).save(path, format="PNG", optimize=True)  # palette PNG: ~3x smaller
    return path


# ---------------------------------------------------------------- the stage of one cell

PROBE_IMAGES = 64
SHOWCASE_SPARSITIES = (0.3, 0.5, 0.7)  # cells whose records also keep a few maps to look at
SHOWCASE_IMAGES = 3
STAGE_VERSION = 2  # bump when the probe, explainers or metrics change (cached dense maps)


def encode(t: Tensor, signed: bool) -> str:
    """A map or image as base64 of uint8 (maps scaled by their own largest |value|)."""
    import base64

    t = t.detach().float()
    if signed:
        t = t / (t.abs().max().clamp_min(1e-12)) * 127.5 + 127.5
    else:  # images normalised to [-1, 1]
        t = (t.clamp(-1, 1) + 1) * 127.5
    return base64.b64encode(t.round().clamp(0, 255).to(torch.uint8).numpy().tobytes()).decode()


def decode(text: str, shape: Sequence[int], signed: bool) -> Tensor:
    """The inverse of :func:`encode` (up to the 8-bit rounding; maps come back in [-1, 1])."""
    import base64

    import numpy as np

    raw = np.frombuffer(base64.b64decode(text), dtype=np.uint8).astype(np.float32)
    t = torch.from_numpy(raw.copy()).reshape(*shape) / 127.5 - 1
    return t


def showcase(cell_seed: int, sparsity: float, scope: str, recovery: str,
             batchnorm: bool = True) -> bool:
    """Whether a cell's record keeps maps for the pictures: seed 0, layer scope, a showcase
    sparsity, and bnrecal, or no recovery for a model without BatchNorm (the ViT, where
    re-calibration has nothing to do and the published specs run ``none``)."""
    wanted = "bnrecal" if batchnorm else "none"
    return cell_seed == 0 and scope == "layer" and recovery == wanted and any(
        abs(sparsity - s) < 1e-9 for s in SHOWCASE_SPARSITIES)


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has a BatchNorm layer (what re-calibration would re-estimate)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def stage(dense: nn.Module, pruned: nn.Module, test_x: Tensor, test_y: Tensor, n_classes: int,
          multi_label: bool, seed: int, dense_cache: Path, keep_maps: bool) -> dict:
    """The transparency block of a record: metrics per reference explainer on the probe set,
    the dense maps cached at ``dense_cache`` (once per baseline), and a few maps if asked."""
    from bench.compute import cache
    from bench.compute.explain import probe

    chosen = probe(test_y, PROBE_IMAGES, n_classes, seed, multi_label)
    x = test_x[chosen.index]
    names = reference_explainers(dense)
    ref = cache.get_or_compute(dense_cache, lambda: {"dense": explained(
        dense, x, chosen.target, names, multi_label)})["dense"]
    result = measure(dense, pruned, x, chosen.target, names, ref, multi_label)
    block = {"probe": {"images": len(x), "seed": seed, "split": "test"},
             "explainers": {n: EXPLAINERS.get(n).description for n in names},
             **result.metrics}
    if keep_maps:  # the pictures show the LRP lens
        k, name = SHOWCASE_IMAGES, names[0]
        block["maps"] = {"explainer": name, "index": chosen.index[:k].tolist(),
                         "image_shape": list(x.shape[1:]),
                         "images": [encode(img, False) for img in x[:k]],
                         "dense": [encode(m, True) for m in ref.maps[name][:k]],
                         "pruned": [encode(m, True) for m in result.pruned.maps[name][:k]]}
    return block


def stored_maps(block: dict) -> tuple[Tensor, Tensor, Tensor]:
    """Images (k, C, H, W) in [-1, 1] and dense / pruned maps (k, H, W) from a record's block."""
    maps = block["maps"]
    c, h, w = maps["image_shape"]
    images = torch.stack([decode(t, (c, h, w), False) for t in maps["images"]])
    dense = torch.stack([decode(t, (h, w), True) for t in maps["dense"]])
    pruned = torch.stack([decode(t, (h, w), True) for t in maps["pruned"]])
    return images, dense, pruned
