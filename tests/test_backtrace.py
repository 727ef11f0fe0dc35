"""DL-Backtrace engine: exact default-mode relevances against loop references, contrast-mode
conservation, the three backbones, and the error for an unsupported layer."""

from __future__ import annotations

import itertools
import operator

import pytest
import torch
from torch import nn

from bench.api import Batch
from bench.attribution.backtrace import propagate, scores, trace
from bench.compute import data
from bench.compute.models import build
from bench.compute.units import find_sites, scoring_copy
from bench.core.errors import PluginError

torch.set_num_threads(1)


def _batch(x: torch.Tensor, n_classes: int) -> Batch:
    return Batch(x, torch.zeros(len(x), dtype=torch.long), "multi-class", n_classes)


def _input_relevance(model: nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    gm = trace(model)
    rel = propagate(gm, x, mode)
    (placeholder,) = [n for n in gm.graph.nodes if n.op == "placeholder"]
    return rel[placeholder]


def ref_dense(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor, r: torch.Tensor):
    """Default rule for one image, straight from the formula: returns (R_in, R per weight)."""
    r_in, r_w = torch.zeros_like(a), torch.zeros_like(w)
    for j in range(w.shape[0]):
        denom = sum(abs(a[i] * w[j, i]) for i in range(w.shape[1])) + abs(b[j])
        for i in range(w.shape[1]):
            share = r[j] * abs(a[i] * w[j, i]) / denom
            r_in[i] += share
            r_w[j, i] += share
    return r_in, r_w


def ref_conv(a, w, b, r, stride: int, pad: int):
    """Default rule for a conv over one image: loop over every output position and patch cell."""
    r_in, r_w = torch.zeros_like(a), torch.zeros_like(w)
    c_in, k = w.shape[1], w.shape[2]
    for o, oh, ow in itertools.product(*map(range, r.shape)):
        cells = [(c, kh, kw, oh * stride - pad + kh, ow * stride - pad + kw)
                 for c, kh, kw in itertools.product(range(c_in), range(k), range(k))]
        cells = [cell for cell in cells if 0 <= cell[3] < a.shape[1] and 0 <= cell[4] < a.shape[2]]
        z = {(c, kh, kw, ih, iw): abs(a[c, ih, iw] * w[o, c, kh, kw]) for c, kh, kw, ih, iw in cells}
        denom = sum(z.values()) + abs(b[o])
        for (c, kh, kw, ih, iw), zij in z.items():
            share = r[o, oh, ow] * zij / denom
            r_in[c, ih, iw] += share
            r_w[o, c, kh, kw] += share
    return r_in, r_w


def _seed(logits: torch.Tensor) -> torch.Tensor:
    return nn.functional.one_hot(logits.argmax(1), logits.shape[1]).double()


def test_default_mlp_matches_loop_reference():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)).double().eval()
    x = torch.randn(3, 5, dtype=torch.float64)
    hidden = model[1](model[0](x)).detach()
    seed = _seed(model(x))
    want_ch, want_w, want_in = torch.zeros(4).double(), torch.zeros(4, 5).double(), []
    for n in range(len(x)):
        r_hidden, _ = ref_dense(hidden[n], model[2].weight.detach(), model[2].bias.detach(), seed[n])
        r_in, r_w = ref_dense(x[n], model[0].weight.detach(), model[0].bias.detach(), r_hidden)
        want_ch += r_hidden
        want_w += r_w
        want_in.append(r_in)
    batch = _batch(x, 3)
    got_ch = scores(model, find_sites(model, "channel"), batch)["0"]
    got_w = scores(model, find_sites(model, "weight"), batch)["0"]
    assert torch.allclose(got_ch, want_ch, rtol=1e-10, atol=1e-12)
    assert torch.allclose(got_w, want_w, rtol=1e-10, atol=1e-12)
    assert torch.allclose(_input_relevance(model, x, "default")[0], torch.stack(want_in), atol=1e-12)


def test_default_conv_matches_loop_reference():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(27, 4)).double().eval()
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    conv_out = model[1](model[0](x)).detach()
    seed = _seed(model(x))
    conv, fc = model[0], model[3]
    want_ch, want_w, want_in = torch.zeros(3, dtype=torch.float64), torch.zeros_like(conv.weight), []
    for n in range(len(x)):
        r_flat, _ = ref_dense(conv_out[n].flatten(), fc.weight.detach(), fc.bias.detach(), seed[n])
        r_conv = r_flat.view(3, 3, 3)
        r_in, r_w = ref_conv(x[n], conv.weight.detach(), conv.bias.detach(), r_conv, 2, 1)
        want_ch += r_conv.sum((1, 2))
        want_w += r_w
        want_in.append(r_in)
    batch = _batch(x, 4)
    got_ch = scores(model, find_sites(model, "channel"), batch)["0"]
    got_w = scores(model, find_sites(model, "weight"), batch)["0"]
    assert torch.allclose(got_ch, want_ch, rtol=1e-10, atol=1e-12)
    assert torch.allclose(got_w, want_w.detach(), rtol=1e-10, atol=1e-12)
    assert torch.allclose(_input_relevance(model, x, "default")[0], torch.stack(want_in), atol=1e-12)


class _Residual(nn.Module):
    """conv -> relu -> conv, plus the skip: exercises operator.add and fan-in."""

    def __init__(self, c: int, bias: bool) -> None:
        super().__init__()
        self.a, self.b = (nn.Conv2d(c, c, 3, padding=1, bias=bias) for _ in range(2))
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.b(self.relu(self.a(x))) + x)


def _contrast_nets(bias: bool) -> list[nn.Module]:
    return [
        nn.Sequential(nn.Linear(6, 8, bias=bias), nn.ReLU(), nn.Linear(8, 8, bias=bias), nn.ReLU(),
                      nn.Linear(8, 4, bias=bias)),
        nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=bias), nn.BatchNorm2d(4), nn.ReLU(),
                      nn.MaxPool2d(2), _Residual(4, bias), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                      nn.Linear(16, 8, bias=bias), nn.ReLU(), nn.Dropout(), nn.Linear(8, 3, bias=bias)),
    ]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("net", [0, 1])
def test_contrast_conserves_relevance_at_every_layer(bias, net):
    torch.manual_seed(10 * net + bias)
    model = _contrast_nets(bias)[net].double().eval()
    x = torch.randn(4, *((6,) if net == 0 else (2, 8, 8)), dtype=torch.float64)
    checked = []

    def observe(node, op, flow):
        leaving = sum(r.sum() for r in flow.inputs if r is not None)
        assert torch.allclose(leaving, op.rel.sum(), rtol=1e-9), node.name
        assert all((r >= 0).all() for r in flow.inputs if r is not None), node.name
        checked.append(node.name)

    gm = trace(model)
    rel = propagate(gm, x, "contrast", observe)
    (inp,) = [n for n in gm.graph.nodes if n.op == "placeholder"]
    assert len(checked) == sum(n.op.startswith("call_") for n in gm.graph.nodes)
    # Each stream is conserved end to end: fan-in at the skip connection adds up.
    assert torch.allclose(rel[inp].flatten(1).sum(1), torch.full((2,), 4.0, dtype=torch.float64))


def test_contrast_linear_matches_loop_reference():
    torch.manual_seed(3)
    layer = nn.Linear(6, 16).double()
    a, w, b = torch.randn(6, dtype=torch.float64), layer.weight.detach(), layer.bias.detach()
    r = torch.rand(2, 16, dtype=torch.float64)
    want, want_w, cases = torch.zeros(2, 6, dtype=torch.float64), torch.zeros_like(w), set()
    for j in range(16):
        z = a * w[j]
        pos, neg = z.clamp(min=0).sum(), (-z).clamp(min=0).sum()
        t = pos - neg + b[j]
        cases.add((bool(t > 0), bool(pos > 0 and neg > 0), bool(r[0, j] > r[1, j])))
        big, small = int(r[1, j] > r[0, j]), int(r[1, j] <= r[0, j])  # stream indices
        pos_stream, neg_stream = (big, small) if t > 0 else (small, big)
        for i in range(6):
            if pos == 0 or neg == 0:  # one-sided unit: both streams go to its only side
                shares = {k: r[k, j] * abs(z[i]) / (pos + neg) for k in range(2)}
            elif z[i] > 0:
                shares = {pos_stream: r[pos_stream, j] * z[i] / pos}
            else:
                shares = {neg_stream: r[neg_stream, j] * -z[i] / neg}
            for k, share in shares.items():
                want[k, i] += share
                want_w[j, i] += share if k == 0 else -share
    from bench.attribution.backtrace_rules import Op, linear

    got = linear(Op("fc", layer, [a.unsqueeze(0)], r.unsqueeze(1), {}, True, True))
    assert torch.allclose(got.inputs[0][:, 0], want, atol=1e-12)
    assert torch.allclose(got.weight, want_w, atol=1e-12)
    assert {(t, True, hi) for t in (True, False) for hi in (True, False)} <= cases
    assert any(not two_sided for _, two_sided, _ in cases)


@pytest.mark.parametrize("mode", ["default", "contrast"])
@pytest.mark.parametrize("backbone", ["smallcnn", "vgg", "resnet18"])
def test_backbones_get_finite_deterministic_scores(backbone, mode):
    torch.manual_seed(0)
    ds = data.load("synthetic")
    batch = Batch(ds.train.x[:3], ds.train.y[:3], ds.info.task, ds.info.n_classes)
    model = scoring_copy(build(backbone, ds.info.n_channels, ds.info.n_classes))
    for granularity in ("channel", "weight"):
        sites = find_sites(model, granularity)
        first, second = scores(model, sites, batch, mode), scores(model, sites, batch, mode)
        for site in sites:
            assert first[site.name].shape == site.shape, site.name
            assert torch.isfinite(first[site.name]).all(), site.name
            assert first[site.name].abs().sum() > 0, site.name
            assert torch.equal(first[site.name], second[site.name]), site.name


def test_unsupported_layer_names_it():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.GELU(), nn.Flatten(), nn.Linear(2, 2)).eval()
    with pytest.raises(PluginError, match=r"'1' \(GELU\)"):
        scores(model, find_sites(model, "channel"), _batch(torch.randn(2, 1, 3, 3), 2))


@pytest.mark.parametrize("name, mode", [("backtrace", "default"), ("backtrace-contrast", "contrast")])
def test_plugins_are_registered_and_score_in_their_mode(name, mode):
    from bench import plugins

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    batch, sites = _batch(torch.randn(5, 4), 3), find_sites(model, "channel")
    got = plugins.get(name).cls().score(model, sites, batch)
    assert torch.equal(got["0"], scores(model, sites, batch, mode)["0"])


def _pool_op(module: nn.Module, x: torch.Tensor, rel: torch.Tensor):
    from bench.attribution.backtrace_rules import MODULE_RULES, Op

    return MODULE_RULES[type(module)](Op("pool", module, [x], rel, {}, False, False)).inputs[0]


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool_sends_each_window_to_its_maximum(ceil_mode):
    torch.manual_seed(4)
    x, rel = torch.randn(1, 2, 6, 6).double(), None
    x[0, 0, 0, :3] = 5.0  # a tie inside the first window of channel 0: split evenly
    pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=ceil_mode)
    oh = pool(x).shape[-1]
    rel = torch.rand(1, 1, 2, oh, oh).double()
    want = torch.zeros_like(x)
    for c, i, j in itertools.product(range(2), range(oh), range(oh)):
        window = itertools.product(range(2 * i - 1, 2 * i + 2), range(2 * j - 1, 2 * j + 2))
        cells = [(a, b) for a, b in window if 0 <= a < 6 and 0 <= b < 6]  # padding dropped
        top = max(x[0, c, a, b] for a, b in cells)
        winners = [(a, b) for a, b in cells if x[0, c, a, b] == top]
        for a, b in winners:
            want[0, c, a, b] += rel[0, 0, c, i, j] / len(winners)
    got = _pool_op(pool, x, rel)
    assert torch.allclose(got[0], want, atol=1e-12)
    assert torch.allclose(got.sum(), rel.sum())  # max-pool relevance is conserved


def test_adaptive_avg_pool_splits_uniformly_over_overlapping_windows():
    torch.manual_seed(5)
    x, rel = torch.randn(2, 1, 5, 5).double(), torch.rand(1, 2, 1, 2, 2).double()
    want = torch.zeros_like(x)
    for n, oh, ow in itertools.product(range(2), range(2), range(2)):
        # adaptive windows: [floor(o * 5 / 2), ceil((o + 1) * 5 / 2))
        rows = range(oh * 5 // 2, -(-(oh + 1) * 5 // 2))
        cols = range(ow * 5 // 2, -(-(ow + 1) * 5 // 2))
        for ih, iw in itertools.product(rows, cols):
            want[n, 0, ih, iw] += rel[0, n, 0, oh, ow] / (len(rows) * len(cols))
    got = _pool_op(nn.AdaptiveAvgPool2d(2), x, rel)
    assert torch.allclose(got[0], want, atol=1e-12)


def test_residual_sum_gives_half_to_each_summand():
    from bench.attribution.backtrace_rules import FUNCTION_RULES, Op

    x, rel = torch.randn(3, 4), torch.rand(2, 3, 4)
    flow = FUNCTION_RULES[operator.add](Op("add", None, [x, x.clone()], rel, {}, True, False))
    assert all(torch.equal(share, rel / 2) for share in flow.inputs)
