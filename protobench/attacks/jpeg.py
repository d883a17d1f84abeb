"""JPEG compression as a perturbation (Hoffmann et al. 2021, experiment 2).

Hoffmann et al. showed that JPEG compression, invisible to a person, moves
ProtoPNet's similarity scores; the ``jpeg`` preset sweeps the quality.
"""

from __future__ import annotations

from typing import Sequence

import torch

from protobench.imaging import check_quality, jpeg_compress

__all__ = ["check_quality", "jpeg_compress", "jpeg_sweep"]


def jpeg_sweep(images: torch.Tensor, qualities: Sequence[int]) -> list[torch.Tensor]:
    """``jpeg_compress`` at each quality, in order: a list of (N, 3, H, W)."""
    return [jpeg_compress(images, q) for q in qualities]
