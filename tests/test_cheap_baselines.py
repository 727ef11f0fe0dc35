"""activation, gradient and bn-scale plugins: exact values on a tiny hand-built model."""

from pathlib import Path

import pytest
import torch
from torch import nn

from bench.api import Batch
from bench.compute.models import build
from bench.compute.units import find_sites, scoring_copy
from bench.plugins import BUILTIN_DIR, load_file

torch.set_num_threads(1)


def plugin(file: str):
    (cls,) = load_file(Path(BUILTIN_DIR) / file)
    return cls()


def tiny() -> nn.Sequential:
    """1x1 conv (w = 2, -1), BN (gamma = 0.5, -3; identity stats, eps 0), pool, hidden Linear, head."""
    conv = nn.Conv2d(1, 2, 1, bias=False)
    bn = nn.BatchNorm2d(2, eps=0.0)
    hidden, head = nn.Linear(2, 2), nn.Linear(2, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1, 1))
        bn.weight.copy_(torch.tensor([0.5, -3.0]))
        hidden.weight.copy_(torch.tensor([[1.0, 2.0], [-3.0, 0.5]]))
        hidden.bias.copy_(torch.tensor([0.1, -0.2]))
        head.weight.copy_(torch.tensor([[0.3, -0.1], [0.2, 0.4], [-0.5, 0.1]]))
        head.bias.copy_(torch.tensor([0.0, 0.1, -0.1]))
    model = nn.Sequential(conv, bn, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), hidden,
                          nn.ReLU(), head)
    return scoring_copy(model)


BATCH = Batch(torch.tensor([[[[1.0, -2.0], [3.0, 0.0]]], [[[0.0, 1.0], [1.0, 1.0]]]]),
              torch.tensor([2, 0]), "multi-class", 3)


def score(file: str, model: nn.Module) -> dict[str, torch.Tensor]:
    return plugin(file).score(model, find_sites(model, "channel"), BATCH)


def test_activation_is_mean_absolute_site_output():
    got = score("activation.py", tiny())
    # conv: |w_c| * mean |x| = |w_c| * 9/8.  BN output = (x, 3x) -> relu, pool -> (1, 3), (.75, 2.25);
    # hidden = W p + b -> (7.1, -1.7), (5.35, -1.325).
    torch.testing.assert_close(got["0"], torch.tensor([2.25, 1.125]))
    torch.testing.assert_close(got["5"], torch.tensor([6.225, 1.5125]))


def test_gradient_is_abs_mean_loss_gradient_at_site_output():
    model = tiny()
    got = score("gradient.py", model)
    # Chain rule written out by hand, per image (L = sum of per-image cross-entropies).
    pooled = torch.tensor([[1.0, 3.0], [0.75, 2.25]])
    hidden = pooled @ model[5].weight.detach().T + model[5].bias.detach()
    logits = hidden.relu() @ model[7].weight.detach().T + model[7].bias.detach()
    d_logits = logits.softmax(1) - nn.functional.one_hot(BATCH.y, 3)
    d_hidden = (d_logits @ model[7].weight.detach()) * (hidden > 0)
    d_pooled = d_hidden @ model[5].weight.detach()
    bn_out = torch.stack([BATCH.x[:, 0], 3 * BATCH.x[:, 0]], 1)
    d_conv = (d_pooled[:, :, None, None] / 4) * (bn_out > 0) * torch.tensor([0.5, -3.0]).view(1, 2, 1, 1)
    torch.testing.assert_close(got["5"], d_hidden.mean(0).abs())
    torch.testing.assert_close(got["0"], d_conv.mean((0, 2, 3)).abs())


def test_bn_scale_is_abs_gamma_with_weight_l1_fallback():
    got = score("bn_scale.py", tiny())
    torch.testing.assert_close(got["0"], torch.tensor([0.5, 3.0]))
    torch.testing.assert_close(got["5"], torch.tensor([3.0, 3.5]))  # no BN after a Linear


def expected_bn(backbone: str, site: str) -> str:
    """The naming convention of each backbone for the BatchNorm right after a conv."""
    if backbone == "resnet18":
        return site.replace("conv", "bn").replace("downsample.0", "downsample.1")
    prefix, _, index = site.rpartition(".")
    return f"{prefix}{'.' if prefix else ''}{int(index) + 1}"


@pytest.mark.parametrize("backbone", ["smallcnn", "vgg", "resnet18"])
def test_bn_scale_finds_the_consuming_batchnorm_on_every_backbone(backbone):
    torch.manual_seed(0)
    model = build(backbone, 1, 3)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.weight.data.uniform_(-2, 2)
    modules = dict(model.named_modules())
    got = score("bn_scale.py", model)
    for site in find_sites(model, "channel"):
        if isinstance(site.module, nn.Conv2d):
            bn = modules[expected_bn(backbone, site.name)]
            torch.testing.assert_close(got[site.name], bn.weight.detach().abs(), msg=site.name)
        else:
            torch.testing.assert_close(got[site.name], site.weight.detach().abs().sum(1))
