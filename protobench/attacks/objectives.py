"""What an attack maximises, per (image, prototype) pair.

The objectives work on the cell similarity map S_j (N, h, w) of each pair's
prototype j and return one value per pair (N,), so that one backward pass of
their sum gives every pair its own gradient (the pairs do not interact):

- ``displace``: mean S_j over the target cells T minus mean S_j over the
  source cells R (Hoffmann et al. 2021, attack 1: move the prototype's
  activation from where it was to an irrelevant place);
- ``suppress``: -max S_j (Hoffmann et al. 2021, attack 2, "make the head
  disappear"; Sacha et al. 2024 with an ``outside`` mask);
- ``raise``: max S_j over T;
- ``target-margin``: max S_j over T minus max S_j over the other cells, the
  success criterion "the peak lies in T" itself (> 0 exactly when it does);
- ``box-margin``: max S_j outside the clean high-activation box minus max
  S_j inside it, the criterion of Hoffmann et al.'s success-rate notebook
  (the engine gets the box's cells as ``source``).

The margins take a ``temperature``: 0 is the exact max; tau > 0 replaces
each max by its smooth upper bound tau * logsumexp(S / tau), which gives
every cell of a region a gradient, not only its current argmax.

``cross-entropy`` works on the logits instead (the whole-image
classification attack, Madry et al. 2018), for tests against torchattacks
and for masked classification attacks.

An *objective* for the engine is a callable ``objective(model, x) -> (N,)``:
:class:`PrototypeObjective` and :class:`CrossEntropyObjective` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

MAP_OBJECTIVES = ("displace", "suppress", "raise", "target-margin", "box-margin")
OBJECTIVES = MAP_OBJECTIVES + ("cross-entropy",)


def masked_mean(sim: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean of S over the cells of a region: (N, h, w), (N, h, w) bool -> (N,)."""
    region = region.to(sim.dtype)
    return (sim * region).flatten(1).sum(dim=1) / region.flatten(1).sum(dim=1)


def masked_max(sim: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Max of S over the cells of a region (-inf if empty): -> (N,)."""
    return sim.masked_fill(~region, float("-inf")).flatten(1).amax(dim=1)


def smooth_max(sim: torch.Tensor, region: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
    """max of S over a region (temperature 0), or tau * logsumexp(S / tau) over it (-inf if empty).

    The smooth version is an upper bound of the max, within tau * log(#cells).
    """
    if temperature == 0:
        return masked_max(sim, region)
    scaled = (sim / temperature).masked_fill(~region, float("-inf"))
    return temperature * torch.logsumexp(scaled.flatten(1), dim=1)


def region_margin(sim: torch.Tensor, region: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
    """max_{c in region} S_c - max_{c not in region} S_c: > 0 exactly when the peak is in the region.

    sim (N, h, w), region (N, h, w) bool -> (N,). An empty region gives -inf,
    a region holding every cell +inf.
    """
    return smooth_max(sim, region, temperature) - smooth_max(sim, ~region, temperature)


def displace(sim: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean_{c in T} S_c - mean_{c in R} S_c, to maximise (Hoffmann et al. 2021, attack 1)."""
    return masked_mean(sim, target) - masked_mean(sim, source)


def suppress(sim: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-max_c S_c, to maximise, i.e. lower the prototype's similarity everywhere
    (Hoffmann et al. 2021, attack 2). ``source`` and ``target`` are unused."""
    return -sim.flatten(1).amax(dim=1)


def raise_similarity(sim: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """max_{c in T} S_c, to maximise. ``source`` is unused."""
    return masked_max(sim, target)


def target_margin(sim: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
                  temperature: float = 0.0) -> torch.Tensor:
    """max_{c in T} S_c - max_{c not in T} S_c, to maximise: the peak lands in T when > 0.

    ``source`` is unused.
    """
    return region_margin(sim, target, temperature)


def box_margin(sim: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
               temperature: float = 0.0) -> torch.Tensor:
    """max_{c outside the box} S_c - max_{c inside} S_c, to maximise (``source``: the box's cells).

    The success criterion of Hoffmann et al.'s success-rate notebook: the
    prototype's peak leaves its clean high-activation box. ``target`` is unused.
    """
    return region_margin(sim, ~source, temperature)


MAP_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "displace": displace,
    "suppress": suppress,
    "raise": raise_similarity,
    "target-margin": target_margin,
    "box-margin": box_margin,
}
MARGIN_OBJECTIVES = ("target-margin", "box-margin")  # the ones that take a temperature


def prototype_maps(model: nn.Module, x: torch.Tensor, prototype: torch.Tensor) -> torch.Tensor:
    """S_j(x) of each pair's own prototype: x (N, 3, H, W), prototype (N,) -> (N, h, w).

    One forward for all pairs; the N maps are gathered from (N, P, h, w).
    """
    maps = model.similarity_maps(x)
    return maps[torch.arange(len(x), device=maps.device), prototype]


@dataclass
class PrototypeObjective:
    """A map objective of N pairs: ``objective(model, x) -> (N,)`` values to maximise.

    name: one of MAP_OBJECTIVES; prototype: (N,) long; source (R, or the
    box's cells for ``box-margin``) and target (T): (N, h, w) bool cells;
    temperature: of the margins (0: exact max).
    """

    name: str
    prototype: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    temperature: float = 0.0

    def __call__(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        sim = prototype_maps(model, x, self.prototype)
        if self.name in MARGIN_OBJECTIVES:
            return MAP_FUNCTIONS[self.name](sim, self.source, self.target, self.temperature)
        return MAP_FUNCTIONS[self.name](sim, self.source, self.target)

    def select(self, index: torch.Tensor | slice) -> "PrototypeObjective":
        """The objective of a subset of the pairs."""
        return PrototypeObjective(self.name, self.prototype[index], self.source[index],
                                  self.target[index], self.temperature)


@dataclass
class PeakMargin:
    """How far each pair is from success: max S_j over a region minus max S_j elsewhere.

    > 0 exactly when the peak of S_j lies in the region (T for "the peak is
    in the target", the cells outside the box for "the peak left the box",
    ...). Restarts and ensembles keep, per pair, the image with the largest
    margin. ``margin(model, x) -> (N,)``.
    """

    prototype: torch.Tensor
    region: torch.Tensor

    def __call__(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return region_margin(prototype_maps(model, x, self.prototype), self.region)


@dataclass
class CrossEntropyObjective:
    """Cross-entropy of the logits against the labels, per image (to maximise)."""

    labels: torch.Tensor

    def __call__(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), self.labels, reduction="none")

    def select(self, index: torch.Tensor | slice) -> "CrossEntropyObjective":
        return CrossEntropyObjective(self.labels[index])


Objective = PrototypeObjective | CrossEntropyObjective
