"""whole-image: a classification attack on every pixel (robust accuracy), PGD, FGSM or APGD
on the cross-entropy (protobench.attacks.whole_image)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from protobench.attacks.acceleration import accelerated
from protobench.attacks.kinds.base import AttackKind, AttackResult, choose, refuse
from protobench.attacks.whole_image import METHODS, whole_image_attack


@dataclass(frozen=True)
class WholeImageOptions:
    """method: pgd | fgsm | apgd."""

    method: str = "pgd"


def per_image(pairs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(the distinct images of the pairs, each pair's index among them): attacks that act
    on an image once and copy the result to its pairs."""
    return torch.unique(pairs.image_index, return_inverse=True)


class WholeImageKind(AttackKind):
    name = "whole-image"
    summary = "PGD, FGSM or APGD on the cross-entropy over every pixel (robust accuracy)"
    Options = WholeImageOptions

    def check(self, preset: Any) -> None:
        choose(preset, "method", METHODS)
        refuse(preset, "mask", preset.mask == "full", "'full' (whole-image attacks change every pixel)")
        refuse(preset, "objective", preset.objective == "cross-entropy",
               "'cross-entropy' (whole-image attacks are classification attacks)")
        if preset.method == "fgsm":
            refuse(preset, "norm", preset.norm == "Linf", "'Linf' (fgsm)")

    def has_steps(self, preset: Any) -> bool:
        return preset.method != "fgsm"  # one step of size eps

    def run(self, model: nn.Module, images: torch.Tensor, pairs: Any, preset: Any,
            generator: torch.Generator, rows: Any = None) -> list[AttackResult]:
        start = time.perf_counter()
        model = accelerated(model, preset.precision, preset.compile)
        unique, inverse = per_image(pairs)
        image_labels = torch.empty_like(unique).scatter_(0, inverse, pairs.label)
        adv = whole_image_attack(model, images[unique], image_labels, preset.method, preset.norm,
                                 preset.eps, preset.alpha, preset.steps, preset.random_start,
                                 preset.restarts, generator)
        return [AttackResult(preset.name, adv[inverse], {}, None, time.perf_counter() - start)]
