"""Backbones sized for MedMNIST: ResNet-18 with a 28-px stem, He et al.'s CIFAR ResNet-20, a
small VGG with BN, a small CNN, and a small Vision Transformer.

Every backbone is built from torchvision's (or timm's) blocks where they fit and ends in one
Linear classifier (the model's last Linear, which the engine never prunes). Activations are
not in-place, so hooks may read any layer's output. ``bench.core.spec.ARCHITECTURES`` names each
backbone's architecture (cnn / transformer), which decides the granularities it offers and
the methods that apply to it.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torchvision.models import resnet18 as tv_resnet18
from torchvision.models.resnet import BasicBlock
from torchvision.models.vgg import make_layers

from bench.core.registry import Registry

Builder = Callable[[int, int], nn.Module]
BACKBONES: Registry[Builder] = Registry("backbone")


def _no_inplace(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    return model


@BACKBONES.register("resnet18")
def resnet18(in_channels: int, n_classes: int) -> nn.Module:
    """torchvision ResNet-18 with the MedMNIST v2 stem: 3x3 conv, stride 1, no max-pool."""
    model = tv_resnet18(weights=None, num_classes=n_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return _no_inplace(model)


class CifarResNet(nn.Module):
    """He et al. 2016 (arXiv:1512.03385), section 4.2: the 6n+2-layer CIFAR ResNet.

    A 3x3 conv stem of 16 channels (conv-BN-ReLU), three stages of ``n`` torchvision
    ``BasicBlock``s with 16, 32 and 64 channels (the first block of stages 2 and 3 has stride
    2), global average pooling and one Linear classifier ``fc``. Departures from the paper:
    where the shape changes the shortcut is a projection (1x1 conv + BN, the paper's option B)
    instead of option A's zero-padded identity, so that every residual sum is a torchvision
    ``BasicBlock`` that zennit's ResNet canonizer and torch-pruning's dependency graph know;
    inputs are MedMNIST's 28 px (feature maps 28, 14, 7) instead of CIFAR's 32 px.
    """

    def __init__(self, in_channels: int, n_classes: int, n: int = 3,
                 widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        stages, cin = [], widths[0]
        for i, width in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                down = None
                if stride != 1 or cin != width:
                    down = nn.Sequential(nn.Conv2d(cin, width, 1, stride=stride, bias=False),
                                         nn.BatchNorm2d(width))
                blocks.append(BasicBlock(cin, width, stride, down))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], n_classes)
        for module in self.modules():  # torchvision ResNet's initialisation (He et al.'s)
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@BACKBONES.register("resnet20")
def resnet20(in_channels: int, n_classes: int) -> nn.Module:
    """He et al.'s CIFAR ResNet-20 (n = 3, 16/32/64 channels), projection shortcuts, 28 px."""
    return _no_inplace(CifarResNet(in_channels, n_classes, n=3))


class VGGSmall(nn.Module):
    """VGG-style: torchvision's ``make_layers`` with BN (32-M-64-M-128-128-M), then 2 Linear."""

    def __init__(self, in_channels: int, n_classes: int, hidden: int = 256) -> None:
        super().__init__()
        stem = make_layers([32, "M", 64, "M", 128, 128, "M"], batch_norm=True)
        if in_channels != 3:
            stem[0] = nn.Conv2d(in_channels, 32, kernel_size=3, padding=1)
        self.features = stem
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(128 * 3 * 3, hidden)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.3)
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x):
        x = self.flatten(self.pool(self.features(x)))
        return self.classifier(self.dropout(self.relu(self.fc1(x))))


@BACKBONES.register("vgg")
def vgg(in_channels: int, n_classes: int) -> nn.Module:
    return _no_inplace(VGGSmall(in_channels, n_classes))


@BACKBONES.register("smallcnn")
def smallcnn(in_channels: int, n_classes: int) -> nn.Module:
    """Three conv-BN-ReLU blocks (16-32-64), global average pool, a hidden Linear, classifier."""
    def block(cin: int, cout: int, pool: bool) -> list[nn.Module]:
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        return layers + ([nn.MaxPool2d(2)] if pool else [])

    return nn.Sequential(
        *block(in_channels, 16, True), *block(16, 32, True), *block(32, 64, False),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, n_classes),
    )


# The ViT for 28 px: 4x4 patches -> 7x7 = 49 tokens, no class token (average-pooled tokens,
# then LayerNorm and the classifier), 4 blocks of 6 heads (head_dim 16), MLP ratio 2.
VIT_CONFIG = {"patch_size": 4, "embed_dim": 96, "depth": 4, "num_heads": 6, "mlp_ratio": 2.0,
              "class_token": False, "global_pool": "avg", "qkv_bias": True}


@BACKBONES.register("vit")
def vit(in_channels: int, n_classes: int, size: int = 28) -> nn.Module:
    """timm's ``VisionTransformer`` configured for 28-px images (``VIT_CONFIG``).

    Its classifier is ``head`` (never pruned); ``channel`` units are the MLP hidden neurons
    (``blocks.i.mlp.fc1``) and ``head`` units the attention heads (``blocks.i.attn``).
    """
    from timm.models.vision_transformer import VisionTransformer

    return _no_inplace(VisionTransformer(img_size=size, in_chans=in_channels,
                                         num_classes=n_classes, **VIT_CONFIG))


def build(name: str, in_channels: int, n_classes: int) -> nn.Module:
    """Build a registered backbone for a dataset's channel and class counts."""
    return BACKBONES.get(name)(in_channels, n_classes)


def macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass per image: every Conv2d and Linear layer's
    (output elements x inputs per output) on ``example``'s first image; BatchNorm, pooling,
    activations, residual sums and attention's QK^T / AV products are not counted."""
    total = 0

    def count(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        nonlocal total
        fan_in = (module.weight[0].numel() if isinstance(module, nn.Conv2d)
                  else module.in_features)
        total += output.numel() * fan_in

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(count) for m in layers]
    try:
        with torch.no_grad():
            model.eval()(example[:1])
    finally:
        for handle in handles:
            handle.remove()
    return total
