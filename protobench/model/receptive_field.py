"""Receptive-field arithmetic and high-activation boxes (ProtoPNet, Chen et al. 2019).

A layer is described by (kernel size, stride, padding). Running the
recurrence below over a backbone's layers, starting from
``[img_size, 1, 1, 0.5]``, gives for the last feature map

    n      its side length in cells,
    jump   the distance in pixels between neighbouring cells,
    rf     the side of a cell's receptive field in pixels,
    start  the pixel coordinate of the centre of the first cell.

This is the recurrence of the original ``receptive_field.py``, so boxes and
numbers mean the same as there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), end-exclusive


@dataclass(frozen=True)
class ConvInfo:
    """Kernel sizes, strides and paddings of a backbone's layers, in order."""

    kernel_sizes: tuple[int, ...]
    strides: tuple[int, ...]
    paddings: tuple[int, ...]

    def __post_init__(self) -> None:
        if not len(self.kernel_sizes) == len(self.strides) == len(self.paddings):
            raise ValueError("kernel_sizes, strides and paddings differ in length")

    def __add__(self, other: "ConvInfo") -> "ConvInfo":
        return ConvInfo(
            self.kernel_sizes + other.kernel_sizes,
            self.strides + other.strides,
            self.paddings + other.paddings,
        )


def layer_rf_info(kernel_size: int, stride: int, padding: int | str,
                  previous: Sequence[float]) -> list[float]:
    """One step of the receptive-field recurrence (n, jump, rf, start)."""
    n_in, j_in, r_in, start_in = previous
    if padding == "SAME":
        n_out = math.ceil(n_in / stride)
        if n_in % stride == 0:
            pad = max(kernel_size - stride, 0)
        else:
            pad = max(kernel_size - (n_in % stride), 0)
    elif padding == "VALID":
        n_out = math.ceil((n_in - kernel_size + 1) / stride)
        pad = 0
    else:
        pad = int(padding) * 2
        n_out = math.floor((n_in - kernel_size + pad) / stride) + 1
    p_left = math.floor(pad / 2)
    j_out = j_in * stride
    r_out = r_in + (kernel_size - 1) * j_in
    start_out = start_in + ((kernel_size - 1) / 2 - p_left) * j_in
    return [n_out, j_out, r_out, start_out]


def proto_layer_rf_info(img_size: int, conv_info: ConvInfo,
                        prototype_kernel_size: int = 1) -> list[float]:
    """[n, jump, rf, start] of the prototype layer's cells (ProtoPNet's v2)."""
    info: list[float] = [img_size, 1, 1, 0.5]
    for k, s, p in zip(conv_info.kernel_sizes, conv_info.strides, conv_info.paddings):
        info = layer_rf_info(k, s, p, info)
    return layer_rf_info(prototype_kernel_size, 1, "VALID", info)


def rf_box(cell_y: int, cell_x: int, img_size: int, rf_info: Sequence[float]) -> Box:
    """Pixel box (y0, y1, x0, x1) of the receptive field of one cell, clipped to the image."""
    _, jump, rf, start = rf_info
    cy = start + cell_y * jump
    cx = start + cell_x * jump
    half = rf / 2
    return (max(int(cy - half), 0), min(int(cy + half), img_size),
            max(int(cx - half), 0), min(int(cx + half), img_size))


def upsample_maps(maps: torch.Tensor, size: int | tuple[int, int],
                  mode: str = "bicubic") -> torch.Tensor:
    """Upsample (N, h, w) cell maps to image size (N, H, W).

    ``bicubic`` with ``align_corners=False`` follows OpenCV's ``INTER_CUBIC``
    as used by ProtoPNet (same kernel, a = -0.75, and pixel centres).
    """
    if isinstance(size, int):
        size = (size, size)
    out = F.interpolate(maps.unsqueeze(1), size=size, mode=mode,
                        align_corners=False)
    return out.squeeze(1)


def high_activation_mask(maps: torch.Tensor, img_size: int | tuple[int, int],
                         percentile: float = 95.0) -> torch.Tensor:
    """Pixels at or above the percentile of the bicubically upsampled map.

    maps: (N, h, w) cell similarity maps. Returns bool (N, H, W).
    """
    up = upsample_maps(maps.double(), img_size)
    threshold = torch.quantile(up.flatten(1), percentile / 100.0, dim=1).view(-1, 1, 1)
    # Interpolation rounding can split pixels that are equal in exact
    # arithmetic (a flat map); treat values within rounding of the threshold as ties.
    tolerance = 1e-9 * threshold.abs().clamp(min=1.0)
    return up >= threshold - tolerance


def mask_bounding_box(mask: torch.Tensor) -> torch.Tensor:
    """Bounding boxes (y0, y1, x0, x1), end-exclusive, of bool masks (N, H, W).

    A mask with no pixel gives the whole image.
    """
    n, h, w = mask.shape
    rows = mask.any(dim=2)
    cols = mask.any(dim=1)
    ys = torch.arange(h, device=mask.device)
    xs = torch.arange(w, device=mask.device)
    big = torch.tensor(max(h, w) + 1, device=mask.device)
    y0 = torch.where(rows, ys, big).amin(dim=1)
    y1 = torch.where(rows, ys, -1).amax(dim=1) + 1
    x0 = torch.where(cols, xs, big).amin(dim=1)
    x1 = torch.where(cols, xs, -1).amax(dim=1) + 1
    empty = ~rows.any(dim=1)
    boxes = torch.stack([y0, y1, x0, x1], dim=1)
    boxes[empty] = torch.tensor([0, h, 0, w], device=mask.device)
    return boxes


def high_activation_box(maps: torch.Tensor, img_size: int | tuple[int, int],
                        percentile: float = 95.0) -> torch.Tensor:
    """ProtoPNet's high-activation box of each cell map.

    Upsample the (N, h, w) similarity maps to the image with bicubic
    interpolation, keep the pixels at or above the 95th percentile and return
    their bounding boxes as a long tensor (N, 4) of (y0, y1 + 1, x0, x1 + 1),
    the convention of ``find_high_activation_crop``.
    """
    return mask_bounding_box(high_activation_mask(maps, img_size, percentile))


def box_mask(boxes: torch.Tensor, size: int | tuple[int, int], margin: int = 0) -> torch.Tensor:
    """Bool masks (N, H, W) that are True inside each box (N, 4), grown by ``margin`` px."""
    if isinstance(size, int):
        size = (size, size)
    h, w = size
    ys = torch.arange(h, device=boxes.device).view(1, h, 1)
    xs = torch.arange(w, device=boxes.device).view(1, 1, w)
    y0, y1, x0, x1 = [(boxes[:, i] + d).view(-1, 1, 1)
                      for i, d in zip(range(4), (-margin, margin, -margin, margin))]
    return (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
