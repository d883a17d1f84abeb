"""Per-pair metrics of an attack on a prototype (docs/metrics.md).

A *pair* is an image x with one prototype j; x' is its attacked version.
Every function here is pure and batched over N pairs: tensors in, tensors
out, no knowledge of models, attacks or the runner. Shapes:

    sim_before, sim_after    (N, h, w)  cell similarity maps S_j(x), S_j(x')
    high_activation (R)      (N, h, w)  bool, high-activation cells of j on x
    irrelevant (I)           (N, h, w)  bool, cells that should not matter
    target (T)               (N, h, w)  bool, where the attack moves the peak to
    box_cells                (N, h, w)  bool, cells whose centre lies in the
                                        clean high-activation box (edge included)
    all_after                (N, P)     max similarity of every prototype on x'
    rank_before              (N,)       long, rank of j on x (prototype_rank)
    prototype                (N,)       long, index j of each pair
    prototype_class          (P,)       long, class of each prototype, or
                             (P, C)     bool, the classes each prototype serves
                                        (prototypes shared between classes)
    logits_before/after      (N, C)
    labels                   (N,)       long
    x, x_adv                 (N, 3, H, W) in [0, 1]
    mask (M)                 (N, 1, H, W) or (N, H, W) bool, where x may change

Ties are never counted as an attack's success: a peak "moves" only when
some cell outside R is strictly more similar than every cell in R.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import SimpleNamespace
from typing import Iterable, NamedTuple

import numpy as np
import torch

from protobench.metrics.criteria import CRITERIA, peak_in
from protobench.model.receptive_field import upsample_maps

PLC_QUANTILE = 0.9  # top-10% region of an upsampled map (Sacha et al.)


class SimilarityShift(NamedTuple):
    sim_before: torch.Tensor
    sim_after: torch.Tensor
    sim_shift: torch.Tensor


class Predictions(NamedTuple):
    pred_before: torch.Tensor
    pred_after: torch.Tensor
    pred_kept: torch.Tensor
    correct_before: torch.Tensor
    correct_after: torch.Tensor


class PerturbationNorms(NamedTuple):
    linf: torch.Tensor
    l2: torch.Tensor
    frac_changed: torch.Tensor
    outside_unchanged: torch.Tensor


def similarity_shift(sim_before: torch.Tensor, sim_after: torch.Tensor) -> SimilarityShift:
    """Max similarity of prototype j before and after the attack, and its shift.

    sim_before = max_c S_j(x)_c,  sim_after = max_c S_j(x')_c,
    sim_shift = sim_after - sim_before  (Hoffmann et al. 2021; the max is
    ProtoPNet's global pooling, Chen et al. 2019). Maps (N, h, w) -> (N,).
    """
    before = sim_before.flatten(1).amax(dim=1)
    after = sim_after.flatten(1).amax(dim=1)
    return SimilarityShift(before, after, after - before)


def region_max(sim: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """max over the cells c in region of S_j(x)_c; NaN where the region is empty.

    Gives sim_R_before/after (region R) and sim_I_before/after (region I) of
    Hoffmann et al. 2021. sim (N, h, w) float, region (N, h, w) bool -> (N,).
    """
    _check_same_shape(sim, region, "sim", "region")
    region = region.bool()
    values = sim.masked_fill(~region, float("-inf")).flatten(1).amax(dim=1)
    empty = ~region.flatten(1).any(dim=1)
    return values.masked_fill(empty, float("nan"))


def _peak_in(sim: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """max over region > max over its complement (strict); empty region: False
    (protobench.metrics.criteria.peak_in, the attacks' success margin > 0)."""
    _check_same_shape(sim, region, "sim", "region")
    return peak_in(sim, region)


def _located(criterion: str, sim_after: torch.Tensor, **cells: torch.Tensor) -> torch.Tensor:
    """Whether the peak of S_j(x') lies in the region of CRITERIA[criterion], from the cells
    it reads (high_activation, box_cells, irrelevant or target)."""
    return _peak_in(sim_after, CRITERIA[criterion].region(SimpleNamespace(**cells)))


def peak_moved(sim_after: torch.Tensor, high_activation: torch.Tensor) -> torch.Tensor:
    """Whether the peak of S_j(x') left the high-activation cells R of the clean image.

    peak_moved = max_{c not in R} S_j(x')_c > max_{c in R} S_j(x')_c, strictly:
    a tie with a cell of R is not a move (Hoffmann et al. 2021, success of
    attack 1). False when every cell is in R; True when R is empty.
    sim_after (N, h, w), high_activation (N, h, w) bool -> bool (N,).
    """
    return _located("moved", sim_after, high_activation=high_activation)


def peak_irrelevant(sim_after: torch.Tensor, irrelevant: torch.Tensor) -> torch.Tensor:
    """Whether the argmax cell of S_j(x') lies in the irrelevant cells I.

    peak_irrelevant = max_{c in I} S_j(x')_c > max_{c not in I} S_j(x')_c:
    with ties the argmax is ambiguous, and a tie with a relevant cell is not
    counted (same strict rule as :func:`peak_moved`). False when I is empty;
    True when every cell is in I. After Hoffmann et al. 2021, with I measured
    from ground-truth masks. sim_after (N, h, w), irrelevant (N, h, w) bool
    -> bool (N,).
    """
    return _located("irrelevant", sim_after, irrelevant=irrelevant)


def out_of_box(sim_after: torch.Tensor, box_cells: torch.Tensor) -> torch.Tensor:
    """Whether the peak of S_j(x') left the clean high-activation box.

    out_of_box = max_{c outside the box} S_j(x')_c > max_{c inside} S_j(x')_c,
    strictly: the criterion of Hoffmann et al.'s success-rate notebook, with
    cells counted by their centre. A cell is inside the box when its centre
    ((r + 0.5) H / h, where bicubic upsampling puts its value) is, a centre on
    the box's edge included (:func:`~protobench.attacks.regions.cells_in_box`).
    The notebook counts every cell whose block the box touches, more cells,
    so its rate is lower (``research/box_conventions.py``). Stricter than
    :func:`peak_moved`, which only asks the peak to leave R (every cell of R is
    inside the box). False when the box holds every cell. sim_after (N, h, w), box_cells (N, h, w) bool -> bool (N,).
    """
    return _located("out-of-box", sim_after, box_cells=box_cells)


def peak_in_target(sim_after: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Whether the argmax cell of S_j(x') lies in the attack's target cells T.

    peak_in_target = max_{c in T} S_j(x')_c > max_{c not in T} S_j(x')_c,
    strictly. False when T is empty. (N, h, w), (N, h, w) bool -> bool (N,).
    """
    return _located("in-target", sim_after, target=target)


def target_above_clean_peak(sim_before: torch.Tensor, sim_after: torch.Tensor,
                            target: torch.Tensor) -> torch.Tensor:
    """Whether some target cell of S_j(x') is more similar than the clean global maximum.

    max_{c in T} S_j(x')_c > max_c S_j(x)_c, strictly: the demonstration of
    Hoffmann et al.'s "head on stomach" attack (the prototype is now found in
    the target more strongly than it was anywhere on the clean image). False
    when T is empty. (N, h, w), (N, h, w), (N, h, w) bool -> bool (N,).
    """
    return region_max(sim_after, target).nan_to_num(float("-inf")) > _max_similarity(sim_before)


def pac(sim_before: torch.Tensor, sim_after: torch.Tensor) -> torch.Tensor:
    """Prototype activation change (Sacha et al. 2023/2024), in percent.

    PAC = 100 * (1 - a_after / a_before),  a = max(max_c S_j, 0).

    Accepts the maps (N, h, w) or their maxima (N,). Positive PAC means the
    activation dropped (100: it vanished), negative that it rose. With
    a_before = 0 the ratio is undefined: PAC is 0 when a_after is 0 too
    (nothing changed) and NaN otherwise (aggregates drop NaNs).
    """
    a_before = _max_similarity(sim_before).clamp(min=0)
    a_after = _max_similarity(sim_after).clamp(min=0)
    ratio = a_after / a_before.masked_fill(a_before == 0, 1.0)
    out = 100.0 * (1.0 - ratio)
    zero_before = a_before == 0
    out = torch.where(zero_before & (a_after == 0), torch.zeros_like(out), out)
    return torch.where(zero_before & (a_after != 0), torch.full_like(out, float("nan")), out)


def prototype_rank(all_similarities: torch.Tensor, prototype: torch.Tensor,
                   prototype_class: torch.Tensor) -> torch.Tensor:
    """Number of prototypes of other classes whose max similarity exceeds that of j.

    rank_j = #{p : class(p) != class(j), s_p > s_j} (strictly greater).
    all_similarities (N, P), prototype (N,), prototype_class (P,) -> long (N,).
    With shared prototypes, ``prototype_class`` (P, C) bool: p is of another
    class when it serves none of the classes j serves.
    """
    if all_similarities.dim() != 2 or all_similarities.shape[1] != prototype_class.shape[0]:
        raise ValueError(f"all_similarities must be (N, P) with P = {prototype_class.shape[0]} "
                         f"(len of prototype_class); got {tuple(all_similarities.shape)}")
    prototype = prototype.long().to(all_similarities.device)
    own = all_similarities.gather(1, prototype.view(-1, 1))
    if prototype_class.dim() == 2:
        relation = prototype_class.to(all_similarities.device).float()
        other_class = (relation[prototype] @ relation.t()) == 0  # (N, P): no class in common
    else:
        prototype_class = prototype_class.long().to(all_similarities.device)
        other_class = prototype_class.view(1, -1) != prototype_class[prototype].view(-1, 1)
    return ((all_similarities > own) & other_class).sum(dim=1)


def prc(all_before: torch.Tensor, all_after: torch.Tensor, prototype: torch.Tensor,
        prototype_class: torch.Tensor) -> torch.Tensor:
    """Prototype rank change (Sacha et al. 2023/2024).

    PRC = rank_j(x') - rank_j(x), where rank_j counts the prototypes of other
    classes whose max similarity is strictly greater than that of j (see
    :func:`prototype_rank`). Positive PRC: j fell behind other classes'
    prototypes. all_before, all_after (N, P); prototype (N,) long;
    prototype_class (P,) long -> long (N,).
    """
    return (prototype_rank(all_after, prototype, prototype_class)
            - prototype_rank(all_before, prototype, prototype_class))


def plc(sim_before: torch.Tensor, sim_after: torch.Tensor,
        img_size: int | tuple[int, int]) -> torch.Tensor:
    """Prototype location change (Sacha et al. 2023/2024), in percent.

    Upsample both maps bilinearly to the image, keep in each the pixels at
    or above its 0.9 quantile (top 10%), A before and B after, and

        PLC = 100 * (1 - |A & B| / |A | B|),   0 when A | B is empty.

    0 means the prototype points at the same place, 100 at a disjoint one.
    sim_before, sim_after (N, h, w) -> (N,).
    """
    _check_same_shape(sim_before, sim_after, "sim_before", "sim_after")
    top_before = _top_region(upsample_maps(sim_before, img_size, mode="bilinear"))
    top_after = _top_region(upsample_maps(sim_after, img_size, mode="bilinear"))
    inter = (top_before & top_after).flatten(1).sum(dim=1).double()
    union = (top_before | top_after).flatten(1).sum(dim=1).double()
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    return (100.0 * (1.0 - iou)).to(_float_dtype(sim_before))


def _top_region(maps: torch.Tensor, quantile: float = PLC_QUANTILE) -> torch.Tensor:
    """Pixels at or above each map's quantile, bool (N, H, W)."""
    flat = maps.flatten(1).double()
    threshold = torch.quantile(flat, quantile, dim=1, keepdim=True)
    return (flat >= threshold).view(maps.shape)


def predictions(logits_before: torch.Tensor, logits_after: torch.Tensor,
                labels: torch.Tensor) -> Predictions:
    """Predicted classes before and after the attack, and whether they agree.

    pred = argmax_k logits_k; pred_kept = pred_after == pred_before (with
    peak_moved, the dangerous case: the explanation moved while the
    prediction did not); correct_* = pred_* == label. (N, C), (N,) -> (N,).
    """
    pred_before = logits_before.argmax(dim=1)
    pred_after = logits_after.argmax(dim=1)
    labels = labels.long().to(pred_before.device)
    return Predictions(pred_before, pred_after, pred_after == pred_before,
                       pred_before == labels, pred_after == labels)


def perturbation_norms(x: torch.Tensor, x_adv: torch.Tensor,
                       mask: torch.Tensor) -> PerturbationNorms:
    """Size of the perturbation delta = x' - x of each pair, and the mask check.

    linf = max |delta|, l2 = ||delta||_2 over all channels and pixels;
    frac_changed = fraction of pixels where any channel differs;
    outside_unchanged = x' == x exactly at every pixel outside the mask M
    (the masked PGD engine promises a zero perturbation there).
    x, x_adv (N, 3, H, W); mask (N, 1, H, W) or (N, H, W) bool -> (N,).
    """
    _check_same_shape(x, x_adv, "x", "x_adv")
    if x.dim() != 4:
        raise ValueError(f"x must be (N, C, H, W); got {tuple(x.shape)}")
    if mask.dim() == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    n, _, h, w = x.shape
    if tuple(mask.shape) != (n, h, w):
        raise ValueError(f"mask must be (N, 1, H, W) or (N, H, W) = ({n}, {h}, {w}); "
                         f"got {tuple(mask.shape)}")
    delta = (x_adv - x).flatten(2)  # (N, C, H*W)
    changed = (x_adv != x).any(dim=1)  # (N, H, W)
    return PerturbationNorms(
        linf=delta.abs().amax(dim=(1, 2)),
        l2=delta.flatten(1).norm(dim=1),
        frac_changed=changed.flatten(1).float().mean(dim=1).to(_float_dtype(x)),
        outside_unchanged=~(changed & ~mask.bool()).flatten(1).any(dim=1),
    )


@dataclass
class PairMetrics:
    """All metrics of N pairs, one 1-D tensor of length N per field (docs/metrics.md)."""

    sim_before: torch.Tensor
    sim_after: torch.Tensor
    sim_shift: torch.Tensor
    sim_R_before: torch.Tensor
    sim_R_after: torch.Tensor
    sim_I_before: torch.Tensor
    sim_I_after: torch.Tensor
    sim_T_after: torch.Tensor
    peak_moved: torch.Tensor
    out_of_box: torch.Tensor
    peak_irrelevant: torch.Tensor
    peak_in_target: torch.Tensor
    target_above_clean_peak: torch.Tensor
    pac: torch.Tensor
    prc: torch.Tensor
    plc: torch.Tensor
    pred_before: torch.Tensor
    pred_after: torch.Tensor
    pred_kept: torch.Tensor
    in_target_kept: torch.Tensor
    correct_before: torch.Tensor
    correct_after: torch.Tensor
    linf: torch.Tensor
    l2: torch.Tensor
    frac_changed: torch.Tensor
    outside_unchanged: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # registered criteria's columns

    def __getattr__(self, name: str) -> torch.Tensor:
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__} has no metric {name!r}")

    def __len__(self) -> int:
        return int(self.sim_before.shape[0])

    def to_dict(self) -> dict[str, np.ndarray]:
        """Field name -> numpy array on the CPU, in field order (a table's columns), then the
        registered criteria's columns."""
        named = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {name: t.detach().cpu().numpy() for name, t in {**named, **self.extra}.items()}

    @classmethod
    def concat(cls, parts: Iterable["PairMetrics"]) -> "PairMetrics":
        """Join the pairs of several batches, in order (on the CPU)."""
        parts = list(parts)
        if not parts:
            raise ValueError("PairMetrics.concat needs at least one batch")
        joined = {f.name: torch.cat([getattr(p, f.name).detach().cpu() for p in parts])
                  for f in fields(cls) if f.name != "extra"}
        extra = {name: torch.cat([p.extra[name].detach().cpu() for p in parts]) for name in parts[0].extra}
        return cls(**joined, extra=extra)


def pair_metrics(*, sim_before: torch.Tensor, sim_after: torch.Tensor,
                 high_activation: torch.Tensor, irrelevant: torch.Tensor,
                 target: torch.Tensor, box_cells: torch.Tensor, rank_before: torch.Tensor, all_after: torch.Tensor,
                 prototype: torch.Tensor, prototype_class: torch.Tensor,
                 logits_before: torch.Tensor, logits_after: torch.Tensor,
                 labels: torch.Tensor, x: torch.Tensor, x_adv: torch.Tensor,
                 mask: torch.Tensor,
                 img_size: int | tuple[int, int] | None = None) -> PairMetrics:
    """Every metric of docs/metrics.md for a batch of N pairs (shapes: module docstring).

    img_size, the size PLC upsamples to, defaults to the size of x. The clean
    side of PRC is j's rank (``rank_before``), not every prototype's maximum:
    a sweep keeps its pairs in memory, and P maxima per pair were most of it.
    """
    if img_size is None:
        img_size = (int(x.shape[-2]), int(x.shape[-1]))
    shift = similarity_shift(sim_before, sim_after)
    preds = predictions(logits_before, logits_after, labels)
    regions = SimpleNamespace(high_activation=high_activation, box_cells=box_cells,
                              irrelevant=irrelevant, target=target)
    located = {c.column: _peak_in(sim_after, c.region(regions)) for c in CRITERIA.values()}
    own = {f.name for f in fields(PairMetrics)}
    extra = {name: located.pop(name) for name in list(located) if name not in own}
    in_target = located["peak_in_target"]
    norms = perturbation_norms(x, x_adv, mask)
    return PairMetrics(
        sim_before=shift.sim_before,
        sim_after=shift.sim_after,
        sim_shift=shift.sim_shift,
        sim_R_before=region_max(sim_before, high_activation),
        sim_R_after=region_max(sim_after, high_activation),
        sim_I_before=region_max(sim_before, irrelevant),
        sim_I_after=region_max(sim_after, irrelevant),
        sim_T_after=region_max(sim_after, target),
        **located,
        target_above_clean_peak=target_above_clean_peak(sim_before, sim_after, target),
        pac=pac(shift.sim_before, shift.sim_after),
        prc=prototype_rank(all_after, prototype, prototype_class) - rank_before.to(all_after.device),
        plc=plc(sim_before, sim_after, img_size),
        pred_before=preds.pred_before,
        pred_after=preds.pred_after,
        pred_kept=preds.pred_kept,
        in_target_kept=in_target & preds.pred_kept.to(in_target.device),
        correct_before=preds.correct_before,
        correct_after=preds.correct_after,
        linf=norms.linf,
        l2=norms.l2,
        frac_changed=norms.frac_changed,
        outside_unchanged=norms.outside_unchanged,
        extra=extra,
    )


def _max_similarity(sim: torch.Tensor) -> torch.Tensor:
    """(N,) maxima pass through; (N, h, w) maps are reduced to their max."""
    return sim if sim.dim() == 1 else sim.flatten(1).amax(dim=1)


def _float_dtype(t: torch.Tensor) -> torch.dtype:
    return t.dtype if t.is_floating_point() else torch.get_default_dtype()


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape; "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
