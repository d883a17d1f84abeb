"""noise: uniform noise of the preset's norm and eps inside each pair's mask, the control
every attack is read beside (protobench.attacks.noise); as a preset, the control alone."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn as nn

from protobench.attacks.kinds.base import AttackKind, AttackResult
from protobench.attacks.noise import uniform_noise


def noise_control(images: torch.Tensor, pairs: Any, preset: Any,
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
        return [noise_control(images, pairs, preset, generator)]
