"""Attack the pairs as a preset says: masked PGD/APGD, ensembles, whole-image attacks, JPEG, noise.

``run_attack`` perturbs every pair inside its mask (the masked engine attacks
all pairs with one forward and one backward pass per step); ``noise_control``
draws the uniform-noise control of the same mask and eps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from protobench.attacks.acceleration import accelerated, measured
from protobench.attacks.bpda import gradient_surrogate
from protobench.attacks.engine import MASKED_METHODS, Rows, frozen
from protobench.attacks.inputs import check_images
from protobench.attacks.jpeg import jpeg_compress
from protobench.attacks.noise import uniform_noise
from protobench.attacks.objectives import (
    MAP_OBJECTIVES, CrossEntropyObjective, Objective, PeakMargin, PrototypeObjective,
)
from protobench.attacks.pairs import Pairs, retarget
from protobench.attacks.presets import AttackPreset
from protobench.attacks.whole_image import whole_image_attack
from protobench.metrics.criteria import CRITERIA


@dataclass
class AttackResult:
    """The attacked images of N pairs under one setting of a preset.

    attack      the preset's name ("noise" for the control)
    setting     what tells results of one call apart, e.g. {"quality": 50} (jpeg)
    x_adv       (N, 3, H, W) in [0, 1], the attacked image of each pair
    objective   (N,) the score the attack kept x_adv by (masked attacks: the
                success margin, or the objective), else None
    seconds     wall time of the attack
    member      ensembles: (N,) long, which member's image each pair kept
    members     ensembles: each member's own result (with early exit, a member's
                ``attacked`` says which pairs it ran on; the others hold the clean
                image and a score of -inf)
    attacked    ensemble members: (N,) bool, the pairs the member ran on (None: all)
    """

    attack: str
    x_adv: torch.Tensor
    setting: dict[str, Any] = field(default_factory=dict)
    objective: torch.Tensor | None = None
    seconds: float = 0.0
    member: torch.Tensor | None = None
    members: list["AttackResult"] = field(default_factory=list)
    attacked: torch.Tensor | None = None


def make_objective(preset: AttackPreset, pairs: Pairs) -> Objective:
    """The engine's objective for the pairs: a map objective or cross-entropy."""
    if preset.objective == "cross-entropy":
        return CrossEntropyObjective(pairs.label)
    entry = MAP_OBJECTIVES[preset.objective]
    source = pairs.box_cells if entry.source == "box" else pairs.high_activation
    return PrototypeObjective(preset.objective, pairs.prototype, source, pairs.target,
                              preset.temperature, kept_prediction(preset, pairs))


def kept_prediction(preset: AttackPreset, pairs: Pairs) -> torch.Tensor | None:
    """The clean prediction of each pair where the preset keeps it (``keep_prediction``)."""
    return pairs.logits_before.argmax(dim=1) if preset.keep_prediction else None


def success_margin(preset: AttackPreset, pairs: Pairs) -> PeakMargin | None:
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


def masked_engine(model: nn.Module, preset: AttackPreset):
    """The masked engine of a preset (its method), with early exit of its restarts
    unless the preset is ``exhaustive``."""
    return MASKED_METHODS[preset.method](model, preset.norm, preset.eps, preset.alpha,
                                         preset.steps, preset.random_start, preset.restarts,
                                         early_exit=not preset.exhaustive)


def run_attack(model: nn.Module, images: torch.Tensor, pairs: Pairs, preset: AttackPreset,
               generator: torch.Generator | None = None, rows: Rows | None = None) -> list[AttackResult]:
    """Attack every pair as the preset says: one result per setting.

    A single result for masked-pgd, whole-image and noise presets; one per
    quality, in the preset's order, for jpeg. images (B, 3, H, W) in [0, 1]
    (the batch ``pairs`` was selected from); seeded by ``generator``
    (default: seed 0). Each result holds x_adv (N, 3, H, W), one per pair.
    ``rows`` (masked-pgd): the pairs are those rows of a larger batch, whose random
    starts they draw (an ensemble member on the pairs not yet successful).
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    images = check_images(images, model).detach()
    start = time.perf_counter()
    if preset.kind == "noise":
        return [noise_control(model, images, pairs, preset, generator)]
    model = accelerated(model, preset.precision, preset.compile)  # fp32 and eager: the model itself
    if preset.kind == "masked-pgd":
        engine = masked_engine(model, preset)
        with gradient_surrogate(model, preset.backward):
            x_adv, values = engine(images[pairs.image_index], pairs.mask,
                                   make_objective(preset, pairs), generator,
                                   on_measured_model(success_margin(preset, pairs), model), rows)
        return [AttackResult(preset.name, x_adv, {}, values, time.perf_counter() - start)]
    if preset.kind == "ensemble":
        return [run_ensemble(model, images, pairs, preset, generator)]
    # whole-image attacks and JPEG act on each image once, then are copied to its pairs
    unique, inverse = torch.unique(pairs.image_index, return_inverse=True)
    if preset.kind == "whole-image":
        image_labels = torch.empty_like(unique).scatter_(0, inverse, pairs.label)
        adv = whole_image_attack(model, images[unique], image_labels, preset.method, preset.norm,
                                 preset.eps, preset.alpha, preset.steps, preset.random_start,
                                 preset.restarts, generator)
        return [AttackResult(preset.name, adv[inverse], {}, None, time.perf_counter() - start)]
    results = []
    for quality in preset.qualities:
        start = time.perf_counter()
        adv = jpeg_compress(images[unique], quality)
        results.append(AttackResult(preset.name, adv[inverse], {"quality": quality}, None,
                                    time.perf_counter() - start))
    return results


def run_ensemble(model: nn.Module, images: torch.Tensor, pairs: Pairs, preset: AttackPreset,
                 generator: torch.Generator) -> AttackResult:
    """The members in turn; per pair, the image with the largest success margin.

    AutoAttack's rule (Croce & Hein 2020): the ensemble reports each pair's
    worst case, so per pair it is never weaker than any of its members. The
    members share the ensemble's threat model (mask, norm, eps, steps); each
    brings its own method, objective and target rule. Ties go to the first
    member.

    Early exit (the default; ``exhaustive = true`` runs every member on every pair):
    a member attacks only the pairs that no earlier member brought to success, as
    AutoAttack runs each next attack only on the points not yet broken. Per pair the
    best of the members it met is kept, so a successful pair keeps its first success
    (a later member could only deepen it, and the rate counts success, not depth).
    Each member still draws the random starts of all pairs, so a pair's result does
    not depend on which others are left, and the same pairs succeed as in the full search
    (up to the float effects of a smaller batch, about 1e-5 in a similarity).
    """
    start = time.perf_counter()
    margin = success_margin(preset, pairs)
    n = len(pairs)
    clean = images[pairs.image_index]
    results = []
    best = torch.full((n,), float("-inf"), device=clean.device)
    for member in preset.member_presets():
        todo = (torch.arange(n, device=clean.device) if preset.exhaustive
                else (best <= 0).nonzero().flatten())
        if len(todo) == 0:
            masked_engine(model, member).skip(clean, n, generator)
            results.append(AttackResult(member.name, clean, {}, torch.full_like(best, float("-inf")),
                                        0.0, attacked=torch.zeros(n, dtype=torch.bool, device=clean.device)))
            continue
        some = retarget(pairs[todo], member)
        result = run_attack(model, images, some, member, generator, (todo, n))[0]
        with torch.no_grad(), frozen(model):  # all members on the same scale, the measured one
            score = margin.select(todo)(measured(model), result.x_adv)
        if len(todo) < n:  # back to all pairs: the pairs not attacked hold the clean image
            attacked = torch.zeros(n, dtype=torch.bool, device=clean.device)
            attacked[todo] = True
            result.x_adv = clean.clone().index_copy_(0, todo, result.x_adv)
            score = torch.full_like(best, float("-inf")).index_copy_(0, todo, score)
            result.attacked = attacked
        result.objective = score
        best = torch.maximum(best, score)
        results.append(result)
    scores = torch.stack([r.objective for r in results])  # (members, N)
    chosen = scores.argmax(dim=0)
    x_adv = torch.stack([r.x_adv for r in results])[chosen, torch.arange(n)]
    return AttackResult(preset.name, x_adv, {}, scores.amax(dim=0),
                        time.perf_counter() - start, chosen, results)


def noise_control(model: nn.Module, images: torch.Tensor, pairs: Pairs, preset: AttackPreset,
                  generator: torch.Generator | None = None) -> AttackResult:
    """Uniform noise of the preset's norm and eps inside each pair's mask (the control).

    ``model`` is unused (kept so the control is called like ``run_attack``).
    """
    start = time.perf_counter()
    x_adv = uniform_noise(check_images(images, model).detach()[pairs.image_index], pairs.mask, preset.eps,
                          preset.norm, generator)
    return AttackResult("noise", x_adv, {"control_for": preset.name}, None,
                        time.perf_counter() - start)


def pair_batches(pairs: Pairs, batch_size: int):
    """Consecutive runs of at most ``batch_size`` pairs that never split an image's
    pairs (whole-image attacks and JPEG treat each image once per batch); an
    image with more pairs than ``batch_size`` is a batch of its own."""
    counts = torch.unique_consecutive(pairs.image_index, return_counts=True)[1].tolist()
    first = size = 0
    for count in counts:
        if size and size + count > batch_size:
            yield pairs[first:first + size]
            first, size = first + size, 0
        size += count
    if size:
        yield pairs[first:first + size]


def attack_in_batches(model: nn.Module, images: torch.Tensor, pairs: Pairs, preset: AttackPreset,
                      generator: torch.Generator, batch_size: int = 64,
                      control: bool = False) -> torch.Tensor:
    """x_adv (N, 3, H, W) of every pair, ``batch_size`` pairs at a time (``pair_batches``):
    the preset's attack (its first setting), or with ``control`` its noise control."""
    chunks = []
    for batch in pair_batches(pairs, batch_size):
        if control:
            chunks.append(noise_control(model, images, batch, preset, generator).x_adv)
        else:
            chunks.append(run_attack(model, images, batch, preset, generator)[0].x_adv)
    return torch.cat(chunks)
