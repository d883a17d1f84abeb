"""mixup (Zhang et al. 2018) as ProtoPool's training uses it (gmum/ProtoPool
``utils.mixup_data``; ``main.py --mixup_data``, on in its published CUB and
Cars runs with alpha 0.5).

Each batch becomes lam * x + (1 - lam) * x[perm], lam ~ Beta(alpha, alpha),
one lam per batch. Only the cross-entropy sees both labels, lam * CE(y) +
(1 - lam) * CE(y[perm]); the prototype terms (cluster, separation) keep the
first image's label, as ProtoPool's do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class MixedBatch:
    images: torch.Tensor
    other_labels: torch.Tensor  # the label of the image mixed into each one
    lam: float                  # the weight of the first image


class Mixup:
    """Mixes batches with ``alpha``; seeded, so a recipe trains the same model again."""

    def __init__(self, alpha: float, seed: int) -> None:
        self.alpha = alpha
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)

    def get_state(self) -> dict:
        """Both generators' states (a resumed training restores them: training/resume.py)."""
        return {"beta": self.rng.bit_generator.state, "perm": self.generator.get_state()}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["beta"]
        self.generator.set_state(state["perm"])

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> MixedBatch:
        lam = float(self.rng.beta(self.alpha, self.alpha))
        perm = torch.randperm(len(images), generator=self.generator).to(images.device)
        return MixedBatch(lam * images + (1 - lam) * images[perm], labels[perm], lam)


def mixed_loss(loss: torch.Tensor, terms: dict[str, float], logits: torch.Tensor,
               labels: torch.Tensor, batch: MixedBatch, cross_entropy_weight: float
               ) -> tuple[torch.Tensor, dict[str, float]]:
    """A family's loss computed with ``labels`` (the first images'), its cross-entropy
    term turned into mixup's lam * CE(labels) + (1 - lam) * CE(other labels)."""
    ce_first = F.cross_entropy(logits, labels)
    ce = batch.lam * ce_first + (1 - batch.lam) * F.cross_entropy(logits, batch.other_labels)
    return loss + cross_entropy_weight * (ce - ce_first), {**terms, "ce": ce.item()}
