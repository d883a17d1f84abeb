"""Feature extractors ("backbones") of ProtoPNet, made by name.

Every backbone is an ``nn.Module`` mapping normalised images (B, 3, H, W) to
feature maps (B, C, h, w), with ``out_channels`` and ``conv_info()`` (the
layers' kernel sizes, strides and paddings, for receptive-field arithmetic).

The torchvision backbones are re-housed in modules whose parameter names are
those of the original ProtoPNet's ``resnet_features``, ``vgg_features`` and
``densenet_features``, so that original checkpoints load key for key. Their
conv_info follows the original too (e.g. resnet counts the main path only).

ImageNet weights are used only when asked for (``pretrained=True``) and only
from torch's local cache; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torchvision

from protobench.errors import ProtobenchError
from protobench.model.receptive_field import ConvInfo
from protobench.registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")


def create_backbone(name: str, pretrained: bool = False) -> nn.Module:
    """Make the backbone ``name`` (see ``BACKBONES.names()``)."""
    return BACKBONES.create(name, pretrained=pretrained)


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


def sequential_conv_info(layers: nn.Sequential) -> ConvInfo:
    """conv_info of a plain stack: 3x3 convolutions (padding 1) and 2x2 max pools."""
    info = ConvInfo((), (), ())
    for m in layers:
        if isinstance(m, nn.MaxPool2d):
            info = info + ConvInfo((2,), (2,), (0,))
        elif isinstance(m, nn.Conv2d):
            info = info + ConvInfo((3,), (1,), (1,))
    return info


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
