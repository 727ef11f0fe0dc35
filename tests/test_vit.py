"""The ViT backbone: its sites, real attention-head and MLP-neuron removal, and a whole cell.

The ViT (bench.compute.models.VIT_CONFIG): 28 px, 4x4 patches -> T = 49 tokens of width D = 96,
4 blocks of 6 heads (head_dim 16), MLP hidden width 192, no class token.
"""

import copy

import pytest
import torch

from bench.api import capture
from bench.compute import evaluate, models, prune
from bench.compute.runner import run_cell
from bench.compute.units import find_sites
from bench.core.spec import Cell

T, D, HEADS, HD, HIDDEN, BLOCKS = 49, 96, 6, 16, 192, 4
# Removing one head takes its q, k, v rows of qkv (3 * HD * (D + 1) parameters) and its
# HD input columns of proj (HD * D). Its MACs: qkv T*D*3HD (+3HD bias, counted once as
# torch-pruning counts a Linear's bias), q @ k^T and attn @ v 2*T*T*HD, proj T*HD*D.
PARAMS_PER_HEAD = 3 * HD * (D + 1) + HD * D
MACS_PER_HEAD = T * D * 3 * HD + 3 * HD + 2 * T * T * HD + T * HD * D


@pytest.fixture(scope="module")
def x():
    return torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_sites_are_mlp_neurons_heads_and_every_hidden_layer(vit):
    assert [(s.name, s.shape) for s in find_sites(vit, "channel")] == [
        (f"blocks.{i}.mlp.fc1", (HIDDEN,)) for i in range(BLOCKS)]
    assert [(s.name, s.shape) for s in find_sites(vit, "head")] == [
        (f"blocks.{i}.attn", (HEADS,)) for i in range(BLOCKS)]
    weights = [s.name for s in find_sites(vit, "weight")]
    assert weights[:5] == ["patch_embed.proj", "blocks.0.attn.qkv", "blocks.0.attn.proj",
                           "blocks.0.mlp.fc1", "blocks.0.mlp.fc2"]
    assert "head" not in weights and len(weights) == 1 + 4 * BLOCKS


def test_a_cnn_has_no_head_sites():
    from bench.core.errors import SpecError

    with pytest.raises(SpecError, match="has no attention heads"):
        find_sites(models.build("smallcnn", 1, 3), "head")


def test_captured_head_outputs_are_the_heads_slices_of_the_projection_input(vit, x):
    sites = find_sites(vit, "head")[:1]
    seen = {}
    vit.blocks[0].attn.proj.register_forward_pre_hook(lambda m, a: seen.update(x=a[0]))
    with torch.no_grad(), capture(vit, sites) as cap:
        vit(x)
    heads = cap.outputs["blocks.0.attn"]
    assert heads.shape == (4, HEADS, T, HD)
    assert torch.equal(heads[:, 2], seen["x"][:, :, 2 * HD:3 * HD])
    vit.blocks[0].attn.proj._forward_pre_hooks.clear()


def _masked(model, heads: dict[int, list[int]]):
    """A copy whose chosen heads' outputs are zeroed before the projection (no removal)."""
    masked = copy.deepcopy(model)

    def zero(chosen):
        def hook(module, args):
            y = args[0].clone()
            y.view(*y.shape[:2], HEADS, HD)[:, :, chosen] = 0.0
            return (y,)
        return hook

    for block, chosen in heads.items():
        masked.blocks[block].attn.proj.register_forward_pre_hook(zero(chosen))
    return masked


def test_head_pruning_removes_exactly_the_lowest_scored_heads(vit, x):
    scores = {f"blocks.{i}.attn": torch.tensor([5.0, 0.1, 4.0, 0.3, 3.0, 0.2]) + i
              for i in range(BLOCKS)}  # heads 1, 5, 3 are the three lowest of every block
    pruned = prune.prune(vit, scores, "head", "layer", 0.5, x[:1], seed=0)
    assert pruned.achieved_sparsity == 0.5 and pruned.tie_share == 0.0
    for block in pruned.model.blocks:
        assert (block.attn.num_heads, block.attn.qkv.out_features, block.attn.proj.in_features) == (
            3, 3 * 3 * HD, 3 * HD)
    with torch.no_grad():
        out = pruned.model(x)
        expected = _masked(vit, {i: [1, 3, 5] for i in range(BLOCKS)})(x)
    assert out.shape == (4, 3)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert vit.blocks[0].attn.num_heads == HEADS  # the original is untouched


def test_head_pruning_cuts_parameters_and_macs_by_the_removed_heads(vit, x):
    scores = {s.name: torch.arange(6.0) for s in find_sites(vit, "head")}
    dense, pruned = evaluate.cost(vit, x), None
    pruned_model = prune.prune(vit, scores, "head", "layer", 0.5, x[:1]).model
    pruned = evaluate.cost(pruned_model, x)
    assert dense == {"params": 305955, "macs": 16415235}
    removed = 3 * BLOCKS
    assert dense["params"] - pruned["params"] == removed * PARAMS_PER_HEAD == 74304
    assert dense["macs"] - pruned["macs"] == removed * MACS_PER_HEAD == 4535232


def test_global_head_pruning_follows_the_policy_and_keeps_a_head_per_block(vit, x):
    scores = {f"blocks.{i}.attn": torch.full((HEADS,), float(i + 1)) for i in range(BLOCKS)}
    scores["blocks.3.attn"] = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    pruned = prune.prune(vit, scores, "head", "global", 0.25, x[:1], seed=0)
    # L1-normalised: block 3 has five heads at 0; 6 of 24 heads go: those five, then a
    # seeded pick among the equal heads of blocks 0-2 (1/6 each after normalisation)
    heads = [b.attn.num_heads for b in pruned.model.blocks]
    assert heads[3] == 1 and sum(heads) == 18
    assert pruned.tie_share == 18 / 24  # the 18 equal heads straddle the cut


def test_channel_pruning_removes_mlp_neurons_and_shrinks_fc2(vit, x):
    scores = {f"blocks.{i}.mlp.fc1": torch.arange(float(HIDDEN)) for i in range(BLOCKS)}
    pruned = prune.prune(vit, scores, "channel", "layer", 0.5, x[:1])
    assert pruned.achieved_sparsity == 0.5
    for block in pruned.model.blocks:
        assert (block.mlp.fc1.out_features, block.mlp.fc2.in_features) == (96, 96)
    masked = copy.deepcopy(vit)
    for block in masked.blocks:  # zeroing fc1's lowest 96 outputs: GELU(0) = 0 reaches fc2
        block.mlp.fc1.register_forward_hook(
            lambda m, a, out: out.index_fill(-1, torch.arange(96), 0.0))
    with torch.no_grad():
        torch.testing.assert_close(pruned.model(x), masked(x), rtol=0, atol=1e-5)
    removed = BLOCKS * 96 * (D + 1 + D)  # fc1 rows with their bias, fc2 columns
    assert evaluate.cost(vit, x)["params"] - evaluate.cost(pruned.model, x)["params"] == removed


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("vit-cache")  # one 1-epoch baseline for both cells


@pytest.mark.parametrize("granularity,method", [("head", "taylor"), ("channel", "magnitude")])
def test_a_pruned_vit_cell_runs_and_is_evaluated(cache_dir, granularity, method):
    cell = Cell("synthetic", 28, "vit", method, "1", granularity, "layer", 0.5, "bnrecal",
                seed=0, epochs=1, reference_per_class=4, min_steps=0, transparency=False)
    m = run_cell(cell, cache_dir)
    assert m["achieved_sparsity"] == 0.5
    assert m["params"] < m["params_dense"] == 305955 and m["macs"] < m["macs_dense"] == 16415235
    if granularity == "head":
        assert m["params_dense"] - m["params"] == 3 * BLOCKS * PARAMS_PER_HEAD
    for stage in ("dense", "pruned", "recovered"):
        assert 0.0 <= m[stage]["acc"] <= 1.0 and m[stage]["auc"] is not None
    assert m["latency"]["b1"]["pruned_ms"] > 0 and "gpu" not in m["latency"]
