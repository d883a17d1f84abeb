"""masked-pgd: PGD or APGD on a map objective, changing only the pixels of each pair's mask
(Hoffmann et al. 2021's attack, made a benchmark's). All pairs of a batch share one forward
and one backward pass per step (protobench.attacks.engine)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from protobench.attacks.acceleration import accelerated, measured
from protobench.attacks.bpda import gradient_surrogate
from protobench.attacks.engine import MASKED_METHODS, Rows
from protobench.attacks.kinds.base import AttackKind, AttackResult, choose, refuse
from protobench.attacks.objectives import (
    MAP_OBJECTIVES, CrossEntropyObjective, Objective, PeakMargin, PrototypeObjective,
)
from protobench.metrics.criteria import CRITERIA


@dataclass(frozen=True)
class MaskedOptions:
    """method: pgd | apgd; temperature: of the smooth objectives; success: the criterion
    restarts keep the best of; keep_prediction: also keep the clean prediction;
    exhaustive: no early exit; backward: exact | bpda (attacks/presets.py has each in full)."""

    method: str = "pgd"
    temperature: float = 0.0
    success: str = "auto"
    keep_prediction: bool = False
    exhaustive: bool = False
    backward: str = "exact"


def make_objective(preset: Any, pairs: Any) -> Objective:
    """The engine's objective for the pairs: a map objective or cross-entropy."""
    if preset.objective == "cross-entropy":
        return CrossEntropyObjective(pairs.label)
    entry = MAP_OBJECTIVES[preset.objective]
    source = pairs.box_cells if entry.source == "box" else pairs.high_activation
    return PrototypeObjective(preset.objective, pairs.prototype, source, pairs.target,
                              preset.temperature, kept_prediction(preset, pairs))


def kept_prediction(preset: Any, pairs: Any) -> torch.Tensor | None:
    """The clean prediction of each pair where the preset keeps it (``keep_prediction``)."""
    return pairs.logits_before.argmax(dim=1) if preset.keep_prediction else None


def success_margin(preset: Any, pairs: Any) -> PeakMargin | None:
    """What restarts and ensembles keep the best of, per pair (None: the objective).

    The margin of the preset's success criterion: > 0 exactly when the peak
    lies in T (in-target), outside the clean box (out-of-box), in an
    irrelevant cell (irrelevant) or outside R (moved); with ``keep_prediction``,
    and the clean prediction kept.
    """
    criterion = CRITERIA.get(preset.success_criterion)  # "objective": none
    if criterion is None:
        return None
    return PeakMargin(pairs.prototype, criterion.region(pairs), kept_prediction(preset, pairs))


@dataclass
class OnMeasuredModel:
    """``score`` (model, x) -> (N,) evaluated on the model the results are measured with
    (fp32, eager), whichever model the attack searches with (``accelerated``): restarts
    and ensembles then keep, per pair, the image that the measured results count best."""

    score: PeakMargin
    model: nn.Module

    def __call__(self, _searched: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.model, x)

    def select(self, index: torch.Tensor) -> "OnMeasuredModel":
        return OnMeasuredModel(self.score.select(index), self.model)


def on_measured_model(score: PeakMargin | None, model: nn.Module) -> OnMeasuredModel | None:
    return None if score is None else OnMeasuredModel(score, measured(model))


def masked_engine(model: nn.Module, preset: Any):
    """The masked engine of a preset (its method), with early exit of its restarts
    unless the preset is ``exhaustive``."""
    return MASKED_METHODS[preset.method](model, preset.norm, preset.eps, preset.alpha,
                                         preset.steps, preset.random_start, preset.restarts,
                                         early_exit=not preset.exhaustive)


def check_masked(preset: Any) -> None:
    """The checks every masked kind (masked-pgd, ensemble) shares."""
    choose(preset, "method", tuple(MASKED_METHODS))
    if preset.backward != "exact":
        refuse(preset, "backward", not preset.compile, "'exact' with compile = true")
    if preset.keep_prediction:
        refuse(preset, "keep_prediction", preset.objective != "cross-entropy",
               "false unless a masked attack ascends a map objective (masked-pgd or ensemble)")


class MaskedPGDKind(AttackKind):
    name = "masked-pgd"
    summary = "PGD or APGD on a map objective inside each pair's mask (Hoffmann et al. 2021)"
    Options = MaskedOptions
    masked = True

    def check(self, preset: Any) -> None:
        check_masked(preset)

    def uses_target(self, preset: Any) -> bool:
        entry = MAP_OBJECTIVES.get(preset.objective)
        return (super().uses_target(preset) or (entry is not None and entry.uses_target)
                or preset.success_criterion == "in-target")

    def run(self, model: nn.Module, images: torch.Tensor, pairs: Any, preset: Any,
            generator: torch.Generator, rows: Rows | None = None) -> list[AttackResult]:
        start = time.perf_counter()
        model = accelerated(model, preset.precision, preset.compile)  # fp32, eager: the model
        engine = masked_engine(model, preset)
        with gradient_surrogate(model, preset.backward):
            x_adv, values = engine(images[pairs.image_index], pairs.mask,
                                   make_objective(preset, pairs), generator,
                                   on_measured_model(success_margin(preset, pairs), model), rows)
        return [AttackResult(preset.name, x_adv, {}, values, time.perf_counter() - start)]
