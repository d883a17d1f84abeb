"""Attacks on ProtoPNet's explanations and predictions (SPEC section 5).

The runner's two calls::

    preset = load_attack("pgd-local", eps="4/255")
    pairs = select_pairs(model, images, labels, relevance_masks, preset)
    results = run_attack(model, images, pairs, preset, generator)   # list[AttackResult]
    control = noise_control(model, images, pairs, preset, generator)

A *pair* is an image with one of its prototypes; ``select_pairs`` picks the
prototypes (top-k, class-top-k or a list), computes the regions of each pair
on the clean image (high-activation box and cells R, irrelevant cells I,
target cells T, pixel mask M) and records the clean outputs the metrics
compare against. ``run_attack`` perturbs every pair inside its mask; the
masked PGD engine attacks all pairs with one forward and one backward pass
per step.

Modules: ``regions`` (R, I, T, M), ``objectives`` (displace, suppress,
raise, the margins, cross-entropy), ``engine`` (masked PGD and APGD),
``noise`` (the control), ``jpeg``, ``whole_image`` (torchattacks),
``presets`` (attacks/*.toml).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import torch
import torch.nn as nn

from protobench.attacks.engine import MASKED_METHODS, MaskedAPGD, MaskedPGD, frozen
from protobench.attacks.inputs import check_images
from protobench.attacks.jpeg import jpeg_compress
from protobench.attacks.noise import uniform_noise
from protobench.attacks.objectives import (
    CrossEntropyObjective, Objective, PeakMargin, PrototypeObjective,
)
from protobench.attacks.presets import AttackPreset, attack_names, load_attack, parse_fraction
from protobench.attacks.regions import (
    argmax_cells, cells_in_box, explicit_cells, farthest_window, irrelevant_cells,
    most_similar_window, pixel_mask, region_cells,
)
from protobench.attacks.whole_image import whole_image_attack
from protobench.errors import ProtobenchError
from protobench.model.receptive_field import high_activation_mask, mask_bounding_box

__all__ = [
    "AttackPreset", "AttackResult", "MaskedAPGD", "MaskedPGD", "Pairs", "PeakMargin",
    "attack_names", "jpeg_compress", "load_attack", "make_objective", "noise_control",
    "parse_fraction", "retarget", "run_attack", "run_ensemble", "select_pairs",
    "success_margin", "uniform_noise", "whole_image_attack",
]


@dataclass
class Pairs:
    """N (image, prototype) pairs and their regions on the clean images.

    image_index     (N,) long      index of the pair's image in the batch
    prototype       (N,) long      prototype j
    label           (N,) long      true class of the image
    box             (N, 4) long    high-activation box (y0, y1, x0, x1) of j on x
    high_activation (N, h, w) bool R, the high-activation cells (holds the argmax)
    box_cells       (N, h, w) bool the cells whose centre lies in the box
    irrelevant      (N, h, w) bool I, the irrelevant cells (ground truth where known)
    target          (N, h, w) bool T, where the attack moves the similarity
    mask            (N, 1, H, W) bool M, the pixels the attack may change
    has_relevance   (N,) bool      whether I comes from a ground-truth mask
    sim_before      (N, h, w)      S_j(x), the clean similarity map of j
    all_before      (N, P)         max similarity of every prototype on x
    logits_before   (N, C)         logits on x
    """

    image_index: torch.Tensor
    prototype: torch.Tensor
    label: torch.Tensor
    box: torch.Tensor
    high_activation: torch.Tensor
    box_cells: torch.Tensor
    irrelevant: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    has_relevance: torch.Tensor
    sim_before: torch.Tensor
    all_before: torch.Tensor
    logits_before: torch.Tensor

    def __len__(self) -> int:
        return len(self.image_index)

    def __getitem__(self, index: int | slice | torch.Tensor) -> "Pairs":
        """A subset of the pairs (a slice, an index tensor or a bool mask)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Pairs(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device: torch.device | str) -> "Pairs":
        return Pairs(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


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
    members     ensembles: each member's own result
    """

    attack: str
    x_adv: torch.Tensor
    setting: dict[str, Any] = field(default_factory=dict)
    objective: torch.Tensor | None = None
    seconds: float = 0.0
    member: torch.Tensor | None = None
    members: list["AttackResult"] = field(default_factory=list)


# ------------------------------------------------------------------ pairs
def select_pairs(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 relevance_masks: torch.Tensor | Sequence[torch.Tensor | None] | None = None,
                 preset: AttackPreset | None = None) -> Pairs:
    """Choose the attacked prototypes of each image and compute their regions.

    model: a pixel-space ProtoPNet; images (B, 3, H, W) in [0, 1]; labels
    (B,) long; relevance_masks: bool (B, H, W) (True on the object), or one
    mask or None per image, or None (then I = cells outside R). Pairs are
    ordered by image, then by prototype rank. One forward pass, no gradient.
    """
    preset = preset or AttackPreset()
    images = check_images(images, model).detach()
    labels = torch.as_tensor(labels, device=images.device).long()
    size = tuple(images.shape[-2:])
    with torch.no_grad(), frozen(model):
        logits, _, maps = model.explain(images)
    all_max = maps.flatten(2).amax(dim=2)  # (B, P)
    chosen = _choose_prototypes(all_max, labels, model.prototype_class.to(images.device), preset)
    image_index = torch.arange(len(images), device=images.device).repeat_interleave(chosen.shape[1])
    prototype = chosen.flatten()

    sim = maps[image_index, prototype]  # (N, h, w)
    grid = tuple(sim.shape[-2:])
    region = high_activation_mask(sim, size, preset.percentile)  # once for the box and for R
    box = mask_bounding_box(region)
    R = region_cells(region, sim)
    relevance, has = _relevance(relevance_masks, len(images), size, images.device)
    I = irrelevant_cells(R, None if relevance is None else relevance[image_index],
                         None if has is None else has[image_index], preset.irrelevant_threshold)
    T = _checked_target(preset, R, I, sim, size, image_index, prototype)
    mask = pixel_mask(preset.mask, size, box, T, preset.margin)
    has_pairs = (torch.zeros(len(prototype), dtype=torch.bool, device=images.device)
                 if has is None else has[image_index])
    return Pairs(image_index, prototype, labels[image_index], box, R,
                 cells_in_box(box, grid, size), I, T, mask, has_pairs,
                 sim, all_max[image_index], logits[image_index])


def _checked_target(preset: AttackPreset, R: torch.Tensor, I: torch.Tensor, sim: torch.Tensor,
                    size: tuple[int, int], image_index: torch.Tensor,
                    prototype: torch.Tensor) -> torch.Tensor:
    """T by the preset's rule; a pair without a target cell raises when T is used."""
    if not preset.needs_target and preset.target in ("most-similar", "farthest"):
        return I & ~R  # unused: do not fail on pairs without a window
    T = _target_cells(preset, R, I, sim, tuple(sim.shape[-2:]), size)
    empty = ~T.flatten(1).any(dim=1)
    if preset.needs_target and empty.any():
        where = [(int(image_index[i]), int(prototype[i])) for i in empty.nonzero().flatten()]
        raise ProtobenchError(
            f"target {preset.target!r} of attack {preset.name!r} has no cell for the "
            f"(image, prototype) pair(s) {where[:10]}: no irrelevant cell outside the "
            "high-activation cells; choose another target or irrelevant_threshold")
    return T


def _choose_prototypes(all_max: torch.Tensor, labels: torch.Tensor,
                       prototype_class: torch.Tensor, preset: AttackPreset) -> torch.Tensor:
    """(B, k) prototype indices per image, by the preset's rule."""
    b, p = all_max.shape
    if isinstance(preset.prototypes, tuple):
        bad = [j for j in preset.prototypes if j >= p]
        if bad:
            raise ProtobenchError(f"prototypes {bad} do not exist; the model has {p} "
                                  f"prototypes, indices 0..{p - 1}")
        return torch.tensor(preset.prototypes, device=all_max.device).expand(b, -1)
    scores = all_max
    available = p
    if preset.prototypes == "class-top-k":
        own = prototype_class.view(1, -1) == labels.view(-1, 1)
        scores = all_max.masked_fill(~own, float("-inf"))
        available = int(own.sum(dim=1).min())
    if preset.k > available:
        raise ProtobenchError(f"k={preset.k} is more than the {available} prototypes "
                              f"{preset.prototypes!r} can choose from; allowed: 1..{available}")
    return scores.topk(preset.k, dim=1).indices


def _relevance(masks: torch.Tensor | Sequence[torch.Tensor | None] | None, b: int,
               size: tuple[int, int], device: torch.device
               ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(relevance (B, H, W) bool, has (B,) bool), or (None, None) without any mask."""
    if masks is None:
        return None, None
    if isinstance(masks, torch.Tensor):
        masks = list(masks)
    if len(masks) != b:
        raise ProtobenchError(f"got {len(masks)} relevance masks for {b} images")
    has = torch.tensor([m is not None for m in masks], device=device)
    if not has.any():
        return None, None
    out = torch.zeros(b, *size, dtype=torch.bool, device=device)
    for i, m in enumerate(masks):
        if m is not None:
            if tuple(m.shape) != size:
                raise ProtobenchError(f"relevance mask {i} has shape {tuple(m.shape)}; "
                                      f"the images are {size[0]}x{size[1]}")
            out[i] = m.to(device).bool()
    return out, has


def _target_cells(preset: AttackPreset, R: torch.Tensor, I: torch.Tensor, sim: torch.Tensor,
                  grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """T (N, h, w) bool, by the preset's ``target`` rule."""
    candidates = I & ~R
    if preset.target == "irrelevant":
        return candidates
    if preset.target == "most-similar":
        return most_similar_window(candidates, sim, preset.target_size)
    if preset.target == "farthest":
        return farthest_window(candidates, argmax_cells(sim), preset.target_size)
    if preset.target == "cells":
        return explicit_cells(preset.target_cells, len(R), grid, R.device)
    y0, y1, x0, x1 = preset.target_box
    if y1 > size[0] or x1 > size[1]:
        raise ProtobenchError(f"target_box={list(preset.target_box)} is outside the "
                              f"{size[0]}x{size[1]} image")
    box = torch.tensor([[y0, y1, x0, x1]], device=R.device).expand(len(R), 4)
    return cells_in_box(box, grid, size)


# ---------------------------------------------------------------- attacks
def make_objective(preset: AttackPreset, pairs: Pairs) -> Objective:
    """The engine's objective for the pairs: a map objective or cross-entropy."""
    if preset.objective == "cross-entropy":
        return CrossEntropyObjective(pairs.label)
    source = pairs.box_cells if preset.objective == "box-margin" else pairs.high_activation
    return PrototypeObjective(preset.objective, pairs.prototype, source, pairs.target,
                              preset.temperature)


def success_margin(preset: AttackPreset, pairs: Pairs) -> PeakMargin | None:
    """What restarts and ensembles keep the best of, per pair (None: the objective).

    The margin of the preset's success criterion: > 0 exactly when the peak
    lies in T (in-target), outside the clean box (out-of-box), in an
    irrelevant cell (irrelevant) or outside R (moved).
    """
    regions = {"in-target": pairs.target, "out-of-box": ~pairs.box_cells,
               "irrelevant": pairs.irrelevant, "moved": ~pairs.high_activation}
    criterion = preset.success_criterion
    return PeakMargin(pairs.prototype, regions[criterion]) if criterion in regions else None


def retarget(pairs: Pairs, preset: AttackPreset) -> Pairs:
    """The pairs with T recomputed by another preset's target rule (an ensemble's member)."""
    size = tuple(pairs.mask.shape[-2:])
    T = _checked_target(preset, pairs.high_activation, pairs.irrelevant, pairs.sim_before,
                        size, pairs.image_index, pairs.prototype)
    return dataclasses.replace(pairs, target=T)


def run_attack(model: nn.Module, images: torch.Tensor, pairs: Pairs, preset: AttackPreset,
               generator: torch.Generator | None = None) -> list[AttackResult]:
    """Attack every pair as the preset says: one result per setting.

    A single result for masked-pgd, whole-image and noise presets; one per
    quality, in the preset's order, for jpeg. images (B, 3, H, W) in [0, 1]
    (the batch ``pairs`` was selected from); seeded by ``generator``
    (default: seed 0). Each result holds x_adv (N, 3, H, W), one per pair.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    images = check_images(images, model).detach()
    start = time.perf_counter()
    if preset.kind == "noise":
        return [noise_control(model, images, pairs, preset, generator)]
    if preset.kind == "masked-pgd":
        engine = MASKED_METHODS[preset.method](model, preset.norm, preset.eps, preset.alpha,
                                               preset.steps, preset.random_start, preset.restarts)
        x_adv, values = engine(images[pairs.image_index], pairs.mask,
                               make_objective(preset, pairs), generator,
                               success_margin(preset, pairs))
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
    """Every member on every pair; per pair, the image with the largest success margin.

    AutoAttack's rule (Croce & Hein 2020): the ensemble reports each pair's
    worst case, so per pair it is never weaker than any of its members. The
    members share the ensemble's threat model (mask, norm, eps, steps); each
    brings its own method, objective and target rule. Ties go to the first
    member.
    """
    start = time.perf_counter()
    margin = success_margin(preset, pairs)
    results = []
    for member in preset.member_presets():
        result = run_attack(model, images, retarget(pairs, member), member, generator)[0]
        with torch.no_grad(), frozen(model):
            result.objective = margin(model, result.x_adv)  # all members on the same scale
        results.append(result)
    scores = torch.stack([r.objective for r in results])  # (members, N)
    chosen = scores.argmax(dim=0)
    x_adv = torch.stack([r.x_adv for r in results])[chosen, torch.arange(len(pairs))]
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
