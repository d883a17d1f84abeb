"""Validation of the images given to the attack functions (the public entry points)."""

from __future__ import annotations

import torch

from protobench.errors import ProtobenchError


def check_images(images: torch.Tensor, model: object | None = None, where: str = "images") -> torch.Tensor:
    """``images`` if they are a float (B, 3, H, W) batch in [0, 1], finite, of the model's size.

    Otherwise one clear :class:`ProtobenchError` that names the first bad
    image. The attacks clamp to [0, 1] and measure eps in those units, so an
    image outside it (uint8 0..255, a normalised tensor, an inf) would make
    the mask and the budget meaningless rather than fail.
    """
    if not isinstance(images, torch.Tensor):
        raise ProtobenchError(f"{where} must be a torch.Tensor (B, 3, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ProtobenchError(f"{where} must be (B, 3, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ProtobenchError(f"{where} are {images.dtype}; give floats in [0, 1] "
                              "(uint8 images: divide by 255)")
    size = getattr(model, "img_size", None)
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        raise ProtobenchError(f"{where} are {images.shape[-2]}x{images.shape[-1]} px, the model "
                              f"takes {size}x{size}")
    flat = images.detach().flatten(1)
    bad = ~torch.isfinite(flat).all(dim=1)
    if bad.any():
        raise ProtobenchError(f"{where}: image {int(bad.nonzero()[0])} holds a NaN or infinite value")
    outside = (flat.amin(dim=1) < 0) | (flat.amax(dim=1) > 1)
    if outside.any():
        i = int(outside.nonzero()[0])
        raise ProtobenchError(f"{where}: image {i} has values in [{float(flat[i].min()):.3g}, "
                              f"{float(flat[i].max()):.3g}]; pixels must lie in [0, 1] "
                              "(not normalised, not 0..255)")
    return images
