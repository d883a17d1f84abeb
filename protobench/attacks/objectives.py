"""What an attack maximises, per (image, prototype) pair.

The objectives work on the cell similarity map S_j (N, h, w) of each pair's
prototype j and return one value per pair (N,), so that one backward pass of
their sum gives every pair its own gradient (the pairs do not interact):

The map is the one the model's attack maps give (``protocol.attack_maps``):
its similarity, or for PIP-Net the log-odds of its softmax presence, which
peaks where the presence peaks but keeps a gradient where the presence is
saturated at 1 or 0.

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

Any of them can also hold the prediction (a preset's ``keep_prediction``):
the value becomes min(objective, class margin), with the class margin the
logit of the clean prediction minus the largest other logit (> 0 exactly
when the prediction is kept). The explanation is to move while the answer
stays, as in Dombrowski et al. (2019), who keep the output fixed while they
manipulate explanations; and Hoffmann et al.'s point is that the model says
the same while its explanation points elsewhere.

``cross-entropy`` works on the logits instead (the whole-image
classification attack, Madry et al. 2018), for tests against torchattacks
and for masked classification attacks.

Each map objective is registered with :func:`map_objective`, which also
declares what it needs (the target cells, which source cells, which success
criterion it aims at), so a new objective is one decorated function.

An *objective* for the engine is a callable ``objective(model, x) -> (N,)``:
:class:`PrototypeObjective` and :class:`CrossEntropyObjective` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from protobench.metrics.criteria import (  # noqa: F401 (smooth_max: re-exported)
    CRITERIA, masked_max, peak_margin, smooth_max,
)
from protobench.model.protocol import attack_maps, attack_maps_and_logits


@dataclass(frozen=True)
class MapObjective:
    """A registered map objective and what it needs (see :func:`map_objective`).

    function    ``f(sim, source, target[, temperature]) -> (N,)``, to maximise
    uses_target whether it reads the target cells T (then the preset needs T)
    source      the cells it gets as ``source``: "high-activation" (R) or "box"
                (the cells whose centre lies in the clean high-activation box)
    criterion   the success criterion it aims at (what restarts and ensembles
                keep the best of when ``success = "auto"``): "in-target",
                "out-of-box", "irrelevant", "moved" or "objective"
    smooth      whether it takes a ``temperature`` (0: exact max)
    """

    name: str
    function: Callable[..., torch.Tensor]
    uses_target: bool
    source: str = "high-activation"
    criterion: str = "objective"
    smooth: bool = False


MAP_OBJECTIVES: dict[str, MapObjective] = {}
SOURCES = ("high-activation", "box")
CRITERION_NAMES = (*CRITERIA, "objective")


def map_objective(name: str, *, uses_target: bool, source: str = "high-activation",
                  criterion: str = "objective", smooth: bool = False
                  ) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    """Register a map objective under ``name`` (then any preset may name it).

    A new objective is one decorated function::

        @map_objective("peak-cell", uses_target=True, criterion="in-target")
        def peak_cell(sim, source, target):
            return masked_max(sim, target) - masked_mean(sim, source)
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    if criterion not in CRITERION_NAMES:
        raise ValueError(f"criterion must be one of {CRITERION_NAMES}, not {criterion!r}")

    def register(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        if name in MAP_OBJECTIVES or name == "cross-entropy":
            raise ValueError(f"objective {name!r} is registered twice")
        MAP_OBJECTIVES[name] = MapObjective(name, function, uses_target, source, criterion, smooth)
        return function

    return register


def objective_names() -> tuple[str, ...]:
    """Every objective a preset may name: the registered map objectives and cross-entropy."""
    return tuple(MAP_OBJECTIVES) + ("cross-entropy",)


def masked_mean(sim: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean of S over the cells of a region: (N, h, w), (N, h, w) bool -> (N,)."""
    region = region.to(sim.dtype)
    return (sim * region).flatten(1).sum(dim=1) / region.flatten(1).sum(dim=1)


# the success margin of the criteria (protobench.metrics.criteria): > 0 exactly when the peak
# is in the region; the objectives that aim at a criterion maximise it (smoothly, with a temperature)
region_margin = peak_margin


@map_objective("displace", uses_target=True, criterion="in-target")
def displace(sim: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean_{c in T} S_c - mean_{c in R} S_c, to maximise (Hoffmann et al. 2021, attack 1)."""
    return masked_mean(sim, target) - masked_mean(sim, source)


@map_objective("suppress", uses_target=False)
def suppress(sim: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-max_c S_c, to maximise, i.e. lower the prototype's similarity everywhere
    (Hoffmann et al. 2021, attack 2). ``source`` and ``target`` are unused."""
    return -sim.flatten(1).amax(dim=1)


@map_objective("raise", uses_target=True, criterion="in-target")
def raise_similarity(sim: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """max_{c in T} S_c, to maximise. ``source`` is unused."""
    return masked_max(sim, target)


@map_objective("target-margin", uses_target=True, criterion="in-target", smooth=True)
def target_margin(sim: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
                  temperature: float = 0.0) -> torch.Tensor:
    """max_{c in T} S_c - max_{c not in T} S_c, to maximise: the peak lands in T when > 0.

    ``source`` is unused.
    """
    return region_margin(sim, target, temperature)


@map_objective("box-margin", uses_target=False, source="box", criterion="out-of-box",
               smooth=True)
def box_margin(sim: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
               temperature: float = 0.0) -> torch.Tensor:
    """max_{c outside the box} S_c - max_{c inside} S_c, to maximise (``source``: the box's cells).

    The success criterion of Hoffmann et al.'s success-rate notebook: the
    prototype's peak leaves its clean high-activation box, with the box's
    cells counted as ``out_of_box`` counts them. ``target`` is unused.
    """
    return region_margin(sim, ~source, temperature)


def class_margin(logits: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """logit of ``prediction`` minus the largest other logit: (N, C), (N,) -> (N,); > 0 exactly
    when ``prediction`` is still the argmax (ties are not kept)."""
    own = logits.gather(1, prediction.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, prediction.view(-1, 1), float("-inf")).amax(dim=1)
    return own - others


def prototype_maps(model: nn.Module, x: torch.Tensor, prototype: torch.Tensor) -> torch.Tensor:
    """S_j(x) of each pair's own prototype as the attack ascends it: x (N, 3, H, W),
    prototype (N,) -> (N, h, w).

    The model's attack maps (``protocol.attack_maps``): its similarity maps, or
    a strictly increasing function of them that does not saturate (PIP-Net's
    presence log-odds). In exact arithmetic a margin's sign is the same on
    both; in float32 a saturated similarity can tie where the log-odds do not,
    so success is scored on the similarity itself (:func:`similarity_of`).
    One forward for all pairs; the N maps are gathered from (N, P, h, w).
    """
    return _own_maps(attack_maps(model, x), prototype)


def similarity_of(model: nn.Module, x: torch.Tensor, prototype: torch.Tensor) -> torch.Tensor:
    """S_j(x) of each pair's own prototype as measured, the similarity maps: -> (N, h, w)."""
    return _own_maps(model.similarity_maps(x), prototype)


def _own_maps(maps: torch.Tensor, prototype: torch.Tensor) -> torch.Tensor:
    """Pair i's map of its prototype: (N, P, h, w), (N,) -> (N, h, w)."""
    return maps[torch.arange(len(maps), device=maps.device), prototype]


@dataclass
class PrototypeObjective:
    """A map objective of N pairs: ``objective(model, x) -> (N,)`` values to maximise.

    name: a registered map objective (MAP_OBJECTIVES); prototype: (N,) long; source (R, or the
    box's cells for ``box-margin``) and target (T): (N, h, w) bool cells;
    temperature: of the margins (0: exact max); prediction: (N,) long, the clean
    prediction to keep (the value is then min(objective, class margin)), or None.
    """

    name: str
    prototype: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    temperature: float = 0.0
    prediction: torch.Tensor | None = None

    def __call__(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.prediction is None:
            sim, logits = prototype_maps(model, x, self.prototype), None
        else:
            maps, logits = attack_maps_and_logits(model, x)
            sim = _own_maps(maps, self.prototype)
        entry = MAP_OBJECTIVES[self.name]
        if entry.smooth:
            value = entry.function(sim, self.source, self.target, self.temperature)
        else:
            value = entry.function(sim, self.source, self.target)
        if logits is None:
            return value
        return torch.minimum(value, class_margin(logits.float(), self.prediction))

    def select(self, index: torch.Tensor | slice) -> "PrototypeObjective":
        """The objective of a subset of the pairs."""
        return PrototypeObjective(self.name, self.prototype[index], self.source[index],
                                  self.target[index], self.temperature,
                                  None if self.prediction is None else self.prediction[index])


@dataclass
class PeakMargin:
    """How far each pair is from success: max S_j over a region minus max S_j elsewhere.

    > 0 exactly when the peak of S_j lies in the region (T for "the peak is
    in the target", the cells outside the box for "the peak left the box",
    ...). Restarts and ensembles keep, per pair, the image with the largest
    margin. It reads the similarity maps, as the metrics do (not the attack
    maps: a float32 tie of a saturated presence is a failure when measured).
    ``margin(model, x) -> (N,)``. With a ``prediction`` (N,) to keep, the margin is
    min(peak margin, class margin): > 0 exactly when the peak is in the region and
    the prediction is kept.
    """

    prototype: torch.Tensor
    region: torch.Tensor
    prediction: torch.Tensor | None = None

    def __call__(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.prediction is None:
            return region_margin(similarity_of(model, x, self.prototype), self.region)
        logits, _, maps = model.explain(x)
        peak = region_margin(_own_maps(maps, self.prototype), self.region)
        return torch.minimum(peak, class_margin(logits.float(), self.prediction))

    def select(self, index: torch.Tensor | slice) -> "PeakMargin":
        """The margin of a subset of the pairs."""
        return PeakMargin(self.prototype[index], self.region[index],
                          None if self.prediction is None else self.prediction[index])


@dataclass
class CrossEntropyObjective:
    """Cross-entropy of the logits against the labels, per image (to maximise)."""

    labels: torch.Tensor

    def __call__(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), self.labels, reduction="none")

    def select(self, index: torch.Tensor | slice) -> "CrossEntropyObjective":
        return CrossEntropyObjective(self.labels[index])


Objective = PrototypeObjective | CrossEntropyObjective
