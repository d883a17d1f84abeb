"""ProtoPNet's explanations: "this looks like that".

Local analysis (Chen et al. 2019, fig. 3 and ``local_analysis.py``): for one
image, the top-k prototypes by similarity, with where they activate on the
image (high-activation box and similarity map), the source patch each was
pushed onto, and how much each contributes to the predicted class
(similarity x last-layer weight).

Global analysis (``global_analysis.py``): for each prototype, the training
images whose patches are nearest to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from protobench.model.classifier import PrototypeClassifier
from protobench.model.receptive_field import high_activation_box


@dataclass
class PrototypeEvidence:
    prototype: int
    prototype_class: int
    similarity: float
    weight: float                      # last-layer weight to the predicted class
    contribution: float                # similarity * weight
    box: tuple[int, int, int, int]     # high-activation box on the image
    similarity_map: torch.Tensor       # (h, w)
    source_image: int | None           # push-set index, when the model was pushed
    source_box: tuple[int, int, int, int] | None


@dataclass
class LocalAnalysis:
    image: torch.Tensor                # (3, H, W) in [0, 1]
    label: int | None
    predicted: int
    class_names: list[str]
    evidence: list[PrototypeEvidence]


@torch.no_grad()
def local_analysis(model: PrototypeClassifier, image: torch.Tensor, label: int | None = None,
                   k: int = 5) -> LocalAnalysis:
    """The top-``k`` prototypes of ``image`` (3, H, W) and their evidence."""
    model.eval()
    logits, _, maps = model.explain(image[None].to(model.device))
    maps = maps[0]
    predicted = int(logits.argmax())
    similarity = maps.flatten(1).amax(dim=1)
    top = similarity.topk(min(k, similarity.numel())).indices.tolist()
    boxes = high_activation_box(maps[top], model.img_size).tolist()
    weights = model.net.prototype_weights()[predicted]
    sources = {r["prototype"]: r for r in model.meta.push_records}
    evidence = []
    for j, box in zip(top, boxes):
        src = sources.get(j)
        evidence.append(PrototypeEvidence(
            prototype=j, prototype_class=int(model.prototype_class[j]),
            similarity=float(similarity[j]), weight=float(weights[j]),
            contribution=float(similarity[j] * weights[j]), box=tuple(box),
            similarity_map=maps[j].cpu(),
            source_image=src["image"] if src else None,
            source_box=tuple(src["high_activation_box"]) if src else None))
    return LocalAnalysis(image.cpu(), label, predicted, list(model.meta.classes), evidence)


@torch.no_grad()
def nearest_patches(model: PrototypeClassifier, data: Dataset, k: int = 5,
                    batch_size: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Global analysis: for every prototype the ``k`` images of ``data`` most similar to it.

    Returns (image indices (P, k), similarities (P, k)), most similar first.
    """
    model.eval()
    best_sim = torch.empty(model.num_prototypes, 0)
    best_idx = torch.empty(model.num_prototypes, 0, dtype=torch.long)
    offset = 0
    for images, _ in DataLoader(data, batch_size=batch_size, shuffle=False):
        sims = model.similarity_maps(images.to(model.device)).flatten(2).amax(dim=2).t().cpu()
        idx = torch.arange(offset, offset + images.shape[0]).expand_as(sims)
        best_sim = torch.cat([best_sim, sims], dim=1)
        best_idx = torch.cat([best_idx, idx], dim=1)
        keep = best_sim.topk(min(k, best_sim.shape[1]), dim=1)
        best_sim, best_idx = keep.values, best_idx.gather(1, keep.indices)
        offset += images.shape[0]
    return best_idx, best_sim
