"""whole-image: classification attacks, for robust accuracy: the masked engine with every
pixel in the mask and the cross-entropy as its objective.

:class:`~protobench.model.PrototypeClassifier` takes images in [0, 1] and returns
logits, and eps means the same as in the masked attacks (pixel units).

- ``pgd``: Madry et al. 2018 (Linf or L2; per image the restart with the highest loss);
- ``fgsm``: Goodfellow et al. 2015 (one step of size eps from the clean image, Linf only);
- ``apgd``: Croce & Hein 2020 (Auto-PGD's step-size schedule and momentum, cross-entropy).

The engine equals torchattacks' PGD and PGDL2 step for step on the same random start
(tests/test_attacks_engine.py), so torchattacks is needed only by those tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from protobench.attacks.acceleration import accelerated
from protobench.attacks.kinds.base import AttackKind, AttackResult, choose, per_image, refuse
from protobench.attacks.engine import MASKED_METHODS, MaskedAttack, frozen
from protobench.attacks.objectives import CrossEntropyObjective
from protobench.errors import ProtobenchError
from protobench.threat import check_threat_model


METHODS = ("pgd", "fgsm", "apgd")


def whole_image_engine(model: nn.Module, method: str, norm: str = "Linf", eps: float = 8 / 255,
                       alpha: float = 2 / 255, steps: int = 10, random_start: bool = True,
                       restarts: int = 1) -> MaskedAttack:
    """The engine of a whole-image attack ``method``, with protobench's argument names."""
    check_threat_model(norm, eps, alpha, steps, restarts)
    if method == "pgd":
        return MASKED_METHODS["pgd"](model, norm, eps, alpha, steps, random_start, restarts)
    if method == "fgsm":
        if norm != "Linf":
            raise ProtobenchError(f"fgsm supports norm 'Linf' only, got {norm!r}")
        return MASKED_METHODS["pgd"](model, norm, eps, eps, 1, False, 1)
    if method == "apgd":
        return MASKED_METHODS["apgd"](model, norm, eps, alpha, steps, random_start, restarts)
    raise ProtobenchError(f"unknown whole-image method {method!r}; choose one of: {', '.join(METHODS)}")


def whole_image_attack(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                       method: str, norm: str = "Linf", eps: float = 8 / 255,
                       alpha: float = 2 / 255, steps: int = 10, random_start: bool = True,
                       restarts: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Untargeted whole-image attack on the labels; (B, 3, H, W) -> (B, 3, H, W) in [0, 1].

    Seeded by ``generator`` (default: seed 0); torch's global random state is not touched.
    """
    engine = whole_image_engine(model, method, norm, eps, alpha, steps, random_start, restarts)
    images = images.detach()
    everywhere = torch.ones(len(images), 1, *images.shape[-2:], dtype=torch.bool, device=images.device)
    with frozen(model):
        x_adv, _ = engine(images, everywhere, CrossEntropyObjective(labels.to(images.device)), generator)
    return x_adv.detach()


@dataclass(frozen=True)
class WholeImageOptions:
    """method: pgd | fgsm | apgd."""

    method: str = "pgd"


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
