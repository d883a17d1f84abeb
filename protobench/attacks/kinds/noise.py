"""noise: uniform noise of the preset's norm and eps inside each pair's mask, the control.

An attack's effect only means something beside what noise of the same size
does in the same place (Hoffmann et al. 2021 compare with noise; so does
every table of protobench). As a preset, the control alone."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn as nn

from protobench.attacks.kinds.base import AttackKind, AttackResult
from protobench.threat import check_threat_model


def uniform_noise(images: torch.Tensor, mask: torch.Tensor, eps: float, norm: str = "Linf",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform noise inside the mask, clipped to [0, 1]; exactly zero outside.

    Linf: every masked pixel gets u ~ U[-eps, eps]. L2: u ~ U[-1, 1] on the
    masked pixels, scaled to L2 norm eps per image (the sphere that PGD-L2
    usually ends on).

    images: (N, 3, H, W) in [0, 1]; mask: (N, 1, H, W) bool; eps in pixel
    units. Seeded by ``generator`` (drawn on its device; default seed 0).
    Returns (N, 3, H, W).
    """
    check_threat_model(norm, eps, alpha=1.0, steps=1)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    mask = mask.bool().expand_as(images)
    u = torch.rand(images.shape, generator=generator, device=generator.device).to(images)
    u = torch.where(mask, 2 * u - 1, 0)
    if norm == "Linf":
        delta = u * eps
    else:
        delta = u * eps / u.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return torch.where(mask, (images + delta).clamp(0, 1), images)


def uniform_noise_control(images: torch.Tensor, pairs: Any, preset: Any,
                  generator: torch.Generator | None = None) -> AttackResult:
    """Uniform noise of the preset's norm and eps inside each pair's mask."""
    start = time.perf_counter()
    x_adv = uniform_noise(images[pairs.image_index], pairs.mask, preset.eps, preset.norm, generator)
    return AttackResult("noise", x_adv, {"control_for": preset.name}, None,
                        time.perf_counter() - start)


class NoiseKind(AttackKind):
    name = "noise"
    summary = "uniform noise in the mask, the same budget as an attack (the control)"
    is_control = True

    def has_steps(self, preset: Any) -> bool:
        return False

    def run(self, model: nn.Module, images: torch.Tensor, pairs: Any, preset: Any,
            generator: torch.Generator, rows: Any = None) -> list[AttackResult]:
        return [uniform_noise_control(images, pairs, preset, generator)]
