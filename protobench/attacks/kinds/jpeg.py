"""jpeg: JPEG compression at a sweep of qualities (Hoffmann et al. 2021, experiment 2), an
imperceptible, non-adversarial change of the whole image; one result per quality."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn

from protobench.attacks.kinds.base import AttackKind, AttackResult, per_image, refuse
from protobench.imaging import jpeg_compress


def jpeg_sweep(images: torch.Tensor, qualities: Sequence[int]) -> list[torch.Tensor]:
    """``jpeg_compress`` at each quality, in order: a list of (N, 3, H, W)."""
    return [jpeg_compress(images, q) for q in qualities]


@dataclass(frozen=True)
class JpegOptions:
    """qualities: the JPEG qualities of the sweep, each in [1, 100]."""

    qualities: tuple[int, ...] = (90, 75, 50, 30, 10)


class JpegKind(AttackKind):
    name = "jpeg"
    summary = "JPEG compression at each quality (Hoffmann et al. 2021, experiment 2)"
    Options = JpegOptions

    def check(self, preset: Any) -> None:
        refuse(preset, "qualities", len(preset.qualities) > 0
               and all(1 <= q <= 100 for q in preset.qualities),
               "a non-empty list of integers in [1, 100]")

    def settings(self, preset: Any) -> list[dict[str, Any]]:
        return [{"quality": int(q)} for q in preset.qualities]

    def sweep(self, preset: Any) -> list[dict[str, Any]] | None:
        return [{"qualities": (int(q),)} for q in preset.qualities]

    def run(self, model: nn.Module, images: torch.Tensor, pairs: Any, preset: Any,
            generator: torch.Generator, rows: Any = None) -> list[AttackResult]:
        unique, inverse = per_image(pairs)
        results = []
        for quality in preset.qualities:
            start = time.perf_counter()
            adv = jpeg_compress(images[unique], quality)  # OpenCV's encoder
            results.append(AttackResult(preset.name, adv[inverse], {"quality": quality}, None,
                                        time.perf_counter() - start))
        return results
