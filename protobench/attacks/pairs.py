"""The (image, prototype) pairs an attack works on, and their regions on the clean image.

``select_pairs`` picks the prototypes of each image (top-k, class-top-k or a
list), computes each pair's regions (high-activation box and cells R,
irrelevant cells I, target cells T, pixel mask M) and records the clean
outputs the metrics compare against.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Sequence

import torch
import torch.nn as nn

from protobench.attacks.engine import frozen
from protobench.attacks.inputs import check_images
from protobench.attacks.presets import AttackPreset
from protobench.attacks.regions import cells_in_box, irrelevant_cells, pixel_mask, region_cells
from protobench.attacks.targets import checked_target
from protobench.errors import ProtobenchError
from protobench.metrics.per_pair import prototype_rank
from protobench.model.protocol import check_prototype_model, class_relation
from protobench.model.receptive_field import high_activation_mask, mask_bounding_box


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
    has_relevance   (N,) bool      whether I comes from a ground-truth mask
    sim_before      (N, h, w)      S_j(x), the clean similarity map of j
    rank_before     (N,) long      rank of j on x among other classes' prototypes (PRC's)
    logits_before   (N, C)         logits on x
    mask_rule       MaskRule       how M follows from the box and T

    ``mask`` (N, 1, H, W) bool, M, the pixels the attack may change, is
    computed from ``box`` and ``target`` when asked for, not stored: a full
    CUB sweep keeps every pair of a model in memory, and at 224 px their
    pixel masks alone would take about 1.5 GB per model and attack (5,794
    images, top-5 prototypes).
    """

    image_index: torch.Tensor
    prototype: torch.Tensor
    label: torch.Tensor
    box: torch.Tensor
    high_activation: torch.Tensor
    box_cells: torch.Tensor
    irrelevant: torch.Tensor
    target: torch.Tensor
    has_relevance: torch.Tensor
    sim_before: torch.Tensor
    rank_before: torch.Tensor
    logits_before: torch.Tensor
    mask_rule: MaskRule

    def __len__(self) -> int:
        return len(self.image_index)

    @property
    def mask(self) -> torch.Tensor:
        """M (N, 1, H, W) bool: the pixels each pair's attack may change."""
        rule = self.mask_rule
        return pixel_mask(rule.kind, rule.size, self.box, self.target, rule.margin)

    def __getitem__(self, index: int | slice | torch.Tensor) -> "Pairs":
        """A subset of the pairs (a slice, an index tensor or a bool mask)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return self._map(lambda t: t[index])

    def to(self, device: torch.device | str) -> "Pairs":
        return self._map(lambda t: t.to(device))

    def _map(self, fn) -> "Pairs":
        """The pairs with ``fn`` applied to every per-pair tensor."""
        return dataclasses.replace(self, **{name: fn(getattr(self, name)) for name in tensor_fields()})


@dataclass(frozen=True)
class MaskRule:
    """How a pair's pixel mask follows from its box and target cells (``pixel_mask``)."""

    kind: str                 # the preset's mask: high-activation, target, outside or full
    size: tuple[int, int]     # the image's (H, W)
    margin: int = 0           # px the box grows by for ``outside``


def tensor_fields() -> list[str]:
    """The names of the per-pair tensors of :class:`Pairs`, in order."""
    return [f.name for f in fields(Pairs) if f.name != "mask_rule"]


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
    check_prototype_model(model)
    images = check_images(images, model).detach()
    labels = torch.as_tensor(labels, device=images.device).long()
    size = tuple(images.shape[-2:])
    with torch.no_grad(), frozen(model):
        logits, _, maps = model.explain(images)
    all_max = maps.flatten(2).amax(dim=2)  # (B, P)
    relation = class_relation(model, logits.shape[1]).to(images.device)
    chosen = _choose_prototypes(all_max, labels, relation, preset)
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
    T = checked_target(preset, R, I, sim, size, image_index, prototype)
    has_pairs = (torch.zeros(len(prototype), dtype=torch.bool, device=images.device)
                 if has is None else has[image_index])
    pairs = Pairs(image_index, prototype, labels[image_index], box, R,
                  cells_in_box(box, grid, size), I, T, has_pairs,
                  sim, prototype_rank(all_max[image_index], prototype, relation), logits[image_index],
                  MaskRule(preset.mask, size, preset.margin))
    pairs.mask  # an empty pixel mask fails here, at selection, not inside an attack
    return pairs


def _choose_prototypes(all_max: torch.Tensor, labels: torch.Tensor,
                       relation: torch.Tensor, preset: AttackPreset) -> torch.Tensor:
    """(B, k) prototype indices per image, by the preset's rule; ``relation``
    (P, C) bool says which classes each prototype serves ("class-top-k")."""
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
        own = relation[:, labels].t()  # (B, P)
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
