"""Transparency metrics: exact values on hand-made maps and hand-built models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import spearmanr
from torch import nn

from bench.compute import models
from bench.compute import transparency as T


def row(*values: float) -> torch.Tensor:
    """One map (1, 1, P) from a list of pixel values."""
    return torch.tensor([[values]], dtype=torch.float32)


# --- Spearman -------------------------------------------------------------------------------


def test_identical_maps_correlate_1_and_reversed_maps_minus_1():
    a = torch.randn(5, 7, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(T.spearman(a, a), torch.ones(5))
    assert torch.allclose(T.spearman(a, -a), -torch.ones(5))
    assert torch.allclose(T.spearman(a, a.exp() * 3), torch.ones(5))  # ranks only


def test_a_known_permutation_gives_its_hand_computed_value():
    # swapping ranks 1 and 2 of 5: sum d^2 = 2, rho = 1 - 6*2 / (5 * (25 - 1)) = 0.9
    assert T.spearman(row(1, 2, 3, 4, 5), row(2, 1, 3, 4, 5)).item() == pytest.approx(0.9)
    # a rotation by one of 4: ranks (1,2,3,4) vs (2,3,4,1): sum d^2 = 12, rho = 1 - 72/60 = -0.2
    assert T.spearman(row(10, 20, 30, 40), row(2, 3, 4, 1)).item() == pytest.approx(-0.2)


def test_ties_share_their_average_rank():
    # average ranks (1.5, 1.5, 3, 4) vs (1, 2, 3, 4): Pearson = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert T.average_ranks(row(7, 7, 8, 9)).tolist() == [[1.5, 1.5, 3.0, 4.0]]
    assert T.spearman(row(7, 7, 8, 9), row(1, 2, 3, 4)).item() == pytest.approx(math.sqrt(0.9))


def test_a_constant_map_correlates_0():
    assert T.spearman(row(0, 0, 0, 0), row(1, 2, 3, 4)).item() == 0.0
    assert T.spearman(row(1, 1, 1), row(1, 1, 1)).item() == 0.0


def test_spearman_matches_scipy_on_maps_with_many_ties():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(6, 9, 9, generator=gen).round()
    b = (a + torch.randn(6, 9, 9, generator=gen)).round().clamp(min=0)
    ours = T.spearman(a, b)
    ref = [spearmanr(a[i].flatten(), b[i].flatten()).statistic for i in range(6)]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-6)


# --- top-10% IoU ------------------------------------------------------------------------------


def test_top_k_is_ceil_of_the_fraction_and_ties_go_to_the_lower_index():
    assert T.top_mask(torch.zeros(2, 28, 28)).sum(1).tolist() == [79, 79]  # ceil(78.4)
    mask = T.top_mask(row(5, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
    assert mask.nonzero()[:, 1].tolist() == [0, 1]                         # k = ceil(2.0) = 2


def test_identical_maps_give_iou_1_and_disjoint_tops_give_0():
    a = torch.randn(4, 10, 10, generator=torch.Generator().manual_seed(2))
    assert torch.equal(T.top_iou(a, a), torch.ones(4))
    assert torch.equal(T.top_iou(a, -a), torch.zeros(4))


def test_iou_of_a_known_overlap():
    a = torch.zeros(1, 1, 20)
    b = torch.zeros(1, 1, 20)
    a[0, 0, [3, 7]] = torch.tensor([2.0, 1.0])    # top-2 of a: {3, 7}
    b[0, 0, [7, 11]] = torch.tensor([1.0, 2.0])   # top-2 of b: {7, 11}
    assert T.top_iou(a, b).item() == pytest.approx(1 / 3)           # |{7}| / |{3, 7, 11}|
    # top-4: the tied zeros fill in from the lowest index, {0, 1} in both: {0, 1, 7} / 5 pixels
    assert T.top_iou(a, b, fraction=0.2).item() == pytest.approx(3 / 5)


# --- deletion ---------------------------------------------------------------------------------


class Share(nn.Module):
    """p(class 0) = sum_i w_i x_i over 4 pixels (x in {0, 1}), as logits [log p, log(1-p)]."""

    def __init__(self, multi_label: bool = False) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.4, 0.3, 0.2, 0.1]))
        self.multi_label = multi_label

    def forward(self, x):
        p = (x.flatten(1) * self.w).sum(1).clamp(1e-12, 1 - 1e-12)
        if self.multi_label:
            return torch.logit(p)[:, None]
        return torch.stack([p.log(), (1 - p).log()], 1)


def ones() -> torch.Tensor:
    return torch.ones(1, 1, 2, 2)


def test_deletion_curve_of_a_hand_built_model():
    x, target = ones(), torch.tensor([0])
    maps = {"right": torch.tensor([[[4.0, 3.0], [2.0, 1.0]]]), "reversed": -torch.tensor(
        [[[4.0, 3.0], [2.0, 1.0]]])}
    curves = T.deletion_curves(Share(), x, target, maps, steps=4)
    torch.testing.assert_close(curves["right"], torch.tensor([[1.0, 0.6, 0.3, 0.1, 0.0]]))
    torch.testing.assert_close(curves["reversed"], torch.tensor([[1.0, 0.9, 0.7, 0.4, 0.0]]))
    # trapezoid over removed fraction 0, 1/4, ..., 1: (0.5 + 0.6 + 0.3 + 0.1 + 0) / 4
    assert T.deletion_auc(curves["right"]).item() == pytest.approx(0.375)
    assert T.deletion_auc(curves["reversed"]).item() == pytest.approx(0.625)


def test_deletion_steps_need_not_divide_the_pixels_and_multi_label_uses_sigmoid():
    maps = {"m": torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])}
    curve = T.deletion_curves(Share(multi_label=True), ones(), torch.tensor([0]), maps,
                              multi_label=True, steps=3)["m"]
    torch.testing.assert_close(curve, torch.tensor([[1.0, 0.6, 0.3, 0.0]]))  # 0, 1, 2, 4 gone


def test_deletion_replaces_every_channel_with_the_baseline():
    x = torch.ones(1, 3, 2, 2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    T.deletion_curves(model, x, torch.tensor([0]), {"m": torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])},
                      steps=4, baseline=-0.5)
    steps = torch.cat(seen)   # intact, all gone, then steps 1..3
    assert steps.shape == (5, 3, 2, 2)
    assert torch.equal(steps[2], torch.tensor([[-0.5, 1.0], [1.0, 1.0]]).expand(3, 2, 2))
    assert torch.all(steps[1] == -0.5)


def test_deletion_auc_of_constant_and_linear_curves():
    assert T.deletion_auc(torch.full((1, 9), 0.7)).item() == pytest.approx(0.7)
    assert T.deletion_auc(torch.linspace(1, 0, 9)[None]).item() == pytest.approx(0.5)


def test_deletion_agrees_with_quantus_pixel_flipping():
    """Where the definitions coincide (1 channel, no ties), Quantus gives the same curve."""
    quantus = pytest.importorskip("quantus")
    torch.manual_seed(0)
    model = models.build("smallcnn", 1, 3).eval()
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    target = torch.tensor([0, 1, 2, 0, 1])
    maps = {"m": torch.randn(5, 8, 8)}
    ours = T.deletion_curves(model, x, target, maps, steps=8)["m"]
    metric = quantus.PixelFlipping(features_in_step=8, perturb_baseline=0.0, normalise=False,
                                   disable_warnings=True)
    theirs = metric(model=model, x_batch=x.numpy(), y_batch=target.numpy(),
                    a_batch=maps["m"][:, None].numpy(), softmax=True, device="cpu")
    np.testing.assert_allclose(ours[:, 1:].numpy(), np.array(theirs), rtol=1e-5, atol=1e-6)


# --- measure and the picture ----------------------------------------------------------------


@pytest.fixture
def cell():
    torch.manual_seed(0)
    dense = models.build("smallcnn", 1, 2)
    x = torch.rand(6, 1, 10, 10, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return dense, x, torch.tensor([0, 1, 0, 1, 0, 1])


def test_measure_of_a_model_against_itself(cell):
    dense, x, target = cell
    result = T.measure(dense, dense, x, target)
    assert set(result.metrics) == {"lrp-epf", "ig"}
    for values in result.metrics.values():
        assert set(values) == {"spearman", "iou_top10", "deletion_dense", "deletion_pruned"}
        assert values["spearman"] == pytest.approx(1.0)
        assert values["iou_top10"] == 1.0
        assert values["deletion_dense"] == values["deletion_pruned"]
        assert 0.0 <= values["deletion_dense"] <= 1.0
    json.dumps(result.metrics, allow_nan=False)
    assert result.dense.maps["ig"].shape == (6, 10, 10)
    assert result.dense.deletion["ig"].shape == (6, T.DELETION_STEPS + 1)


def test_measure_reuses_a_cached_dense_reference(cell):
    dense, x, target = cell
    pruned = models.build("smallcnn", 1, 2)  # another model: the pruned stand-in
    first = T.measure(dense, pruned, x, target, explainers=("lrp-epf",))
    again = T.measure(nn.Identity(), pruned, x, target, explainers=("lrp-epf",),
                      dense_ref=first.dense)  # the dense model is not touched again
    assert again.metrics == first.metrics and first.metrics["lrp-epf"]["spearman"] < 1
    with pytest.raises(ValueError, match="ig"):
        T.measure(dense, pruned, x, target, explainers=("ig",), dense_ref=first.dense)
    with pytest.raises(ValueError, match="3 images"):
        T.measure(dense, pruned, x[:3], target[:3], explainers=("lrp-epf",),
                  dense_ref=first.dense)


def test_heatmap_png_is_a_small_grid(tmp_path):
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 28, 28, generator=gen) * 2 - 1
    def noise():
        return torch.randn(8, 28, 28, generator=gen)  # noise: the worst case for PNG
    path = T.heatmap_png(images, noise(), {0.7: noise(), 0.3: noise(), 0.5: noise()},
                         tmp_path / "maps.png")
    assert path.stat().st_size < 100_000
    with Image.open(path) as png:
        assert png.format == "PNG"
        # 8 images + the label column; 5 rows and the colour scale's strip (0.55 in)
        assert png.size == (int(100 * 0.9 * 9), int(100 * (0.9 * 5 + 0.55)))


# ---------------------------------------------------------------- the stage of one cell

def test_maps_survive_the_8_bit_encoding_within_one_step():
    from bench.compute.transparency import decode, encode

    torch.manual_seed(0)
    m = torch.randn(5, 7)
    back = decode(encode(m, True), (5, 7), True)
    assert torch.allclose(back, m / m.abs().max(), atol=1 / 127.5)
    img = torch.rand(3, 4, 4) * 2 - 1
    assert torch.allclose(decode(encode(img, False), (3, 4, 4), False), img, atol=1 / 127.5)


def test_showcase_cells_are_seed_0_layer_bnrecal_at_30_50_70():
    from bench.compute.transparency import showcase

    assert showcase(0, 0.5, "layer", "bnrecal") and showcase(0, 0.3, "layer", "bnrecal")
    assert not showcase(1, 0.5, "layer", "bnrecal")
    assert not showcase(0, 0.9, "layer", "bnrecal")
    assert not showcase(0, 0.5, "global", "bnrecal") and not showcase(0, 0.5, "layer", "none")


def test_a_model_without_batchnorm_keeps_its_showcase_maps_without_recovery():
    """The ViT has nothing to re-calibrate and its specs run ``none``: those cells keep maps."""
    from bench.compute import models
    from bench.compute.transparency import has_batchnorm, showcase

    assert has_batchnorm(models.build("smallcnn", 1, 2))
    assert not has_batchnorm(models.build("vit", 1, 2))
    assert showcase(0, 0.5, "layer", "none", batchnorm=False)
    assert not showcase(0, 0.5, "layer", "bnrecal", batchnorm=False)
    assert not showcase(0, 0.9, "layer", "none", batchnorm=False)


def test_stage_of_an_unpruned_model_preserves_everything_and_caches_the_dense_maps(tmp_path):
    from bench.compute import data, models
    from bench.compute.transparency import stage, stored_maps

    ds = data.load("synthetic")
    torch.manual_seed(0)
    model = models.build("smallcnn", 1, 3).eval()
    cache_file = tmp_path / "dense.pt"
    block = stage(model, model, ds.test.x, ds.test.y, 3, False, 0, cache_file, keep_maps=True)
    assert cache_file.is_file()
    assert block["probe"] == {"images": 64, "seed": 0, "split": "test"}
    assert set(block["explainers"]) == {"lrp-epf", "ig"}
    for name in ("lrp-epf", "ig"):
        assert block[name]["spearman"] == pytest.approx(1.0)
        assert block[name]["iou_top10"] == pytest.approx(1.0)
        assert block[name]["deletion_dense"] == block[name]["deletion_pruned"]
    images, dense, pruned = stored_maps(block)
    assert images.shape == (3, 1, 28, 28) and dense.shape == pruned.shape == (3, 28, 28)
    assert torch.equal(dense, pruned)
    again = stage(model, model, ds.test.x, ds.test.y, 3, False, 0, cache_file, keep_maps=False)
    assert "maps" not in again and again["lrp-epf"] == block["lrp-epf"]


def test_a_transformer_is_explained_with_attnlrp_whose_maps_survive_a_small_pruning(vit, tmp_path):
    """zennit's EpsilonPlusFlat maps of a ViT are unrelated to themselves after removing 10% of
    the MLP neurons (|Spearman| < 0.2); AttnLRP's (and IG's) stay above 0.9, so a ViT's
    reference LRP lens is AttnLRP and its stage block says so."""
    from bench.compute import data, prune
    from bench.compute.explain import probe, reference_explainers
    from bench.compute.transparency import stage

    ds = data.load("synthetic")
    chosen = probe(ds.test.y, 32, 3, 0, False)
    x, target = ds.test.x[chosen.index], chosen.target
    scores = {name: torch.rand(192, generator=torch.Generator().manual_seed(1))
              for name in ("blocks.0.mlp.fc1", "blocks.1.mlp.fc1", "blocks.2.mlp.fc1",
                           "blocks.3.mlp.fc1")}
    pruned = prune.prune(vit, scores, "channel", "layer", 0.1, x[:1], 0).model
    rho = {k: v["spearman"] for k, v in T.measure(vit, pruned, x, target,
                                                  ("lrp-epf", "lrp-attn", "ig")).metrics.items()}
    assert abs(rho["lrp-epf"]) < 0.2 and rho["lrp-attn"] > 0.9 and rho["ig"] > 0.9
    assert reference_explainers(vit) == ("lrp-attn", "ig")
    block = stage(vit, pruned, ds.test.x, ds.test.y, 3, False, 0, tmp_path / "dense.pt",
                  keep_maps=True)
    assert set(block["explainers"]) == {"lrp-attn", "ig"} and block["maps"]["explainer"] == "lrp-attn"
    assert block["lrp-attn"]["spearman"] > 0.9
