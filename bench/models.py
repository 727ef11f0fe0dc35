"""Backbones sized for MedMNIST: ResNet-18 with a 28-px stem, a small VGG with BN, a small CNN,
and a small Vision Transformer.

Every backbone is built from torchvision's (or timm's) blocks where they fit and ends in one
Linear classifier (the model's last Linear, which the engine never prunes). Activations are
not in-place, so hooks may read any layer's output. ``bench.spec.ARCHITECTURES`` names each
backbone's architecture (cnn / transformer), which decides the granularities it offers and
the methods that apply to it.
"""

from __future__ import annotations

from typing import Callable

from torch import nn
from torchvision.models import resnet18 as tv_resnet18
from torchvision.models.vgg import make_layers

from .registry import Registry

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
