"""The target rules: which cells T an attack moves a prototype's peak to, one entry each.

A preset's ``target`` names a rule. Each rule maps the pairs' regions to T
(N, h, w) bool:

    irrelevant        every irrelevant cell outside R
    most-similar      the target_size^2 window of them where S_j is already highest
    farthest          the window of them farthest from the peak
    object-elsewhere  the most-similar window of object cells outside R, at least
                      ELSEWHERE cells from the peak (Hoffmann et al.'s stomach for a
                      head prototype; needs an object mask)
    box               the cells of ``target_box`` (pixels)
    cells             the cells ``target_cells`` lists

A new rule is a function of :class:`TargetInputs` registered with
:func:`target_rule` (docs/design.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch

from protobench.attacks.regions import (
    ELSEWHERE, argmax_cells, cells_away, cells_in_box, explicit_cells, farthest_window,
    most_similar_window,
)
from protobench.errors import ProtobenchError


@dataclass(frozen=True)
class TargetInputs:
    """What a rule may read. preset: the attack preset (its target options);
    R (N, h, w) the high-activation cells; I (N, h, w) the irrelevant cells;
    sim (N, h, w) the clean similarity maps; size (H, W) the image in pixels."""

    preset: Any
    R: torch.Tensor
    I: torch.Tensor
    sim: torch.Tensor
    size: tuple[int, int]

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.sim.shape[-2:])


@dataclass(frozen=True)
class TargetRule:
    """One rule. ``windowed``: it picks a window that a pair may lack; where no part of
    the attack reads T, it is then not computed (a pair without a window is no error)."""

    name: str
    cells: Callable[[TargetInputs], torch.Tensor]
    windowed: bool = False


TARGET_RULES: dict[str, TargetRule] = {}
TARGET_ALIASES = {"irrelevant-box": "farthest"}  # the name before "most-similar" existed


def target_rule(name: str, windowed: bool = False):
    """Register the decorated function (TargetInputs -> T) as the rule ``name``."""
    def register(cells: Callable[[TargetInputs], torch.Tensor]):
        if name in TARGET_RULES:
            raise ValueError(f"target rule {name!r} is registered twice")
        TARGET_RULES[name] = TargetRule(name, cells, windowed)
        return cells
    return register


def target_cells(preset: Any, R: torch.Tensor, I: torch.Tensor, sim: torch.Tensor,
                 size: tuple[int, int]) -> torch.Tensor:
    """T (N, h, w) bool by the preset's ``target`` rule."""
    try:
        rule = TARGET_RULES[preset.target]
    except KeyError:
        raise ProtobenchError(f"unknown target {preset.target!r}; choose one of: "
                              f"{', '.join(TARGET_RULES)}") from None
    return rule.cells(TargetInputs(preset, R, I, sim, size))


@target_rule("irrelevant")
def _irrelevant(t: TargetInputs) -> torch.Tensor:
    return t.I & ~t.R


@target_rule("most-similar", windowed=True)
def _most_similar(t: TargetInputs) -> torch.Tensor:
    return most_similar_window(t.I & ~t.R, t.sim, t.preset.target_size)


@target_rule("farthest", windowed=True)
def _farthest(t: TargetInputs) -> torch.Tensor:
    return farthest_window(t.I & ~t.R, argmax_cells(t.sim), t.preset.target_size)


@target_rule("object-elsewhere", windowed=True)
def _object_elsewhere(t: TargetInputs) -> torch.Tensor:
    elsewhere = ~t.I & ~t.R & cells_away(t.sim.flatten(1).argmax(dim=1), t.grid)
    return most_similar_window(elsewhere, t.sim, t.preset.target_size,
                               f"object cell outside the high-activation cells, {ELSEWHERE} or "
                               "more cells from the peak (it needs an object mask)")


@target_rule("box")
def _box(t: TargetInputs) -> torch.Tensor:
    y0, y1, x0, x1 = t.preset.target_box
    if y1 > t.size[0] or x1 > t.size[1]:
        raise ProtobenchError(f"target_box={list(t.preset.target_box)} is outside the "
                              f"{t.size[0]}x{t.size[1]} image")
    box = torch.tensor([[y0, y1, x0, x1]], device=t.R.device).expand(len(t.R), 4)
    return cells_in_box(box, t.grid, t.size)


@target_rule("cells")
def _cells(t: TargetInputs) -> torch.Tensor:
    return explicit_cells(t.preset.target_cells, len(t.R), t.grid, t.R.device)


TARGETS = tuple(TARGET_RULES)


def checked_target(preset: Any, R: torch.Tensor, I: torch.Tensor, sim: torch.Tensor,
                   size: tuple[int, int], image_index: torch.Tensor,
                   prototype: torch.Tensor) -> torch.Tensor:
    """T by the preset's rule; a pair without a target cell raises when T is used."""
    if not preset.needs_target and TARGET_RULES[preset.target].windowed:
        return I & ~R  # unused: do not fail on pairs without a window
    T = target_cells(preset, R, I, sim, size)
    empty = ~T.flatten(1).any(dim=1)
    if preset.needs_target and empty.any():
        where = [(int(image_index[i]), int(prototype[i])) for i in empty.nonzero().flatten()]
        raise ProtobenchError(
            f"target {preset.target!r} of attack {preset.name!r} has no cell for the "
            f"(image, prototype) pair(s) {where[:10]}: no irrelevant cell outside the "
            "high-activation cells; choose another target or irrelevant_threshold")
    return T


def retarget(pairs: Any, preset: Any) -> Any:
    """The pairs (:class:`~protobench.attacks.pairs.Pairs`) with T recomputed by another
    preset's target rule (an ensemble's member)."""
    T = checked_target(preset, pairs.high_activation, pairs.irrelevant, pairs.sim_before,
                       pairs.mask_rule.size, pairs.image_index, pairs.prototype)
    return dataclasses.replace(pairs, target=T)
