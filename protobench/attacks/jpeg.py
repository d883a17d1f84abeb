"""JPEG compression as a perturbation (Hoffmann et al. 2021, experiment 2).

Hoffmann et al. showed that JPEG compression, invisible to a person, moves
ProtoPNet's similarity scores; the ``jpeg`` preset sweeps the quality.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

from protobench.errors import ProtobenchError


def check_quality(quality: int) -> int:
    """``quality`` as an int in [1, 100], or a :class:`ProtobenchError`."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ProtobenchError(f"JPEG quality {quality!r} is invalid; allowed: integers in [1, 100]")
    return int(quality)


def jpeg_compress(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode each image as JPEG at ``quality`` (OpenCV, 4:2:0 as libjpeg).

    images: (N, 3, H, W) float in [0, 1] (RGB). Returns (N, 3, H, W) float in
    [0, 1] on the same device and dtype; pixels are quantised to 1/255.
    """
    quality = check_quality(quality)
    rgb = (images.detach().clamp(0, 1) * 255).round().to(torch.uint8)
    rgb = rgb.permute(0, 2, 3, 1).cpu().numpy()
    out = np.empty_like(rgb)
    for i, img in enumerate(rgb):
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode image {i} as JPEG")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(images).div(255)


def jpeg_sweep(images: torch.Tensor, qualities: Sequence[int]) -> list[torch.Tensor]:
    """``jpeg_compress`` at each quality, in order: a list of (N, 3, H, W)."""
    return [jpeg_compress(images, q) for q in qualities]
