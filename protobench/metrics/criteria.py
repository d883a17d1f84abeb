"""The rates protobench reports, each in one place: its column, its header, its meaning, and
for the four criteria of where the peak lies, the region of cells it asks the peak to be in.

A peak-location criterion holds for a pair when the peak of the prototype's similarity map
after the attack, S_j(x'), lies in the criterion's region:

    peak_margin(S, region) = max_{c in region} S_c - max_{c not in region} S_c  > 0

strictly (a tie is no success). The attacks keep the best restart or ensemble member by the
same margin (``success`` in a preset), and the metrics count margin > 0, so the two can never
disagree. Adding a criterion is one :func:`register_criterion` call; the metrics (a column of
pairs.csv), the summaries (its rate and interval), the presets' ``success`` names and the
Python report pick it up (docs/design.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch


class Regions(Protocol):
    """The cell regions of N pairs on the clean images, (N, h, w) bool each."""

    high_activation: torch.Tensor   # R, the high-activation cells
    box_cells: torch.Tensor         # the cells whose centre lies in the high-activation box
    irrelevant: torch.Tensor        # I, the cells with no object pixel (ground truth where known)
    target: torch.Tensor            # T, where the attack moves the peak to


@dataclass(frozen=True)
class Rate:
    """A boolean per-pair metric that the summaries report as a rate with its Wilson interval."""

    column: str    # in pairs.csv; summary.csv adds _rate, _ci_low, _ci_high
    header: str    # in the tables
    meaning: str   # in one line


@dataclass(frozen=True)
class Criterion(Rate):
    """A rate that says where the peak lies: in ``region(regions)``."""

    name: str                                        # in a preset's ``success``
    region: Callable[[Regions], torch.Tensor]


CRITERIA: dict[str, Criterion] = {c.name: c for c in [
    Criterion("peak_moved", "peak leaves R", "peak leaves R (the clean high-activation cells)",
              "moved", lambda r: ~r.high_activation.bool()),
    Criterion("out_of_box", "peak leaves the box",
              "peak leaves the clean high-activation box (cells counted by their centre)",
              "out-of-box", lambda r: ~r.box_cells.bool()),
    Criterion("peak_irrelevant", "peak in an irrelevant cell",
              "peak in an irrelevant cell (no object pixel, ground truth)",
              "irrelevant", lambda r: r.irrelevant.bool()),
    Criterion("peak_in_target", "peak in the target", "peak in the target cells T",
              "in-target", lambda r: r.target.bool()),
]}

# Every rate, in the order of the tables: the criteria, then the other boolean metrics.
RATES: list[Rate] = [
    *CRITERIA.values(),
    Rate("target_above_clean_peak", "target above clean peak",
         "max over T after the attack exceeds the clean global max"),
    Rate("pred_kept", "pred kept", "prediction unchanged"),
    Rate("in_target_kept", "in target, pred kept",
         "peak in the target cells T and prediction unchanged (Hoffmann et al.'s case)"),
    Rate("outside_unchanged", "outside unchanged", "no pixel outside the mask changed"),
]


def register_criterion(criterion: Criterion) -> Criterion:
    """Add a criterion of where the peak lies, after the others; a name or column used twice
    is an error."""
    if criterion.name in CRITERIA or any(rate.column == criterion.column for rate in RATES):
        raise ValueError(f"criterion {criterion.name!r} (column {criterion.column!r}) is "
                         "registered twice")
    CRITERIA[criterion.name] = criterion
    RATES.insert(len(CRITERIA) - 1, criterion)
    return criterion


def rate_columns() -> tuple[str, ...]:
    """Every rate's column, registered criteria included, in the order of the tables."""
    return tuple(rate.column for rate in RATES)


def masked_max(sim: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Max of S over the cells of a region (-inf if empty): (N, h, w), (N, h, w) bool -> (N,)."""
    return sim.masked_fill(~region, float("-inf")).flatten(1).amax(dim=1)


def smooth_max(sim: torch.Tensor, region: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
    """max of S over a region (temperature 0), or tau * logsumexp(S / tau) over it (-inf if empty).

    The smooth version is an upper bound of the max, within tau * log(#cells).
    """
    if temperature == 0:
        return masked_max(sim, region)
    scaled = (sim / temperature).masked_fill(~region, float("-inf"))
    return temperature * torch.logsumexp(scaled.flatten(1), dim=1)


def peak_margin(sim: torch.Tensor, region: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
    """max_{c in region} S_c - max_{c not in region} S_c: > 0 exactly when the peak is in the region.

    sim (N, h, w), region (N, h, w) bool -> (N,). An empty region gives -inf,
    a region holding every cell +inf. With a temperature, the smooth maxima.
    """
    region = region.bool()
    return smooth_max(sim, region, temperature) - smooth_max(sim, ~region, temperature)


def peak_in(sim: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Whether the peak of S lies in the region, strictly: (N, h, w), (N, h, w) bool -> bool (N,).
    An empty region: False; a region of every cell: True."""
    return peak_margin(sim, region) > 0
