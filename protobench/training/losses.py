"""ProtoPNet's training loss (Chen et al. 2019, eq. 1 and section 2.2).

    loss = CE + 0.8 * cluster - 0.08 * separation + 1e-4 * L1(wrong-class weights)

``cluster`` pulls every image's closest patch towards some prototype of its
own class; ``separation`` pushes its patches away from the prototypes of other
classes. Both are written as in the original code: with
``max_dist = D * ph * pw`` and ``min_distances`` (B, P),

    cluster    = mean_i  min_{j in class(y_i)}  min_distances[i, j]
    separation = mean_i  min_{j not in class(y_i)} min_distances[i, j]

computed as ``max_dist - max((max_dist - d) * mask)`` so that masked-out
prototypes never win.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossCoefficients:
    cross_entropy: float = 1.0
    cluster: float = 0.8
    separation: float = -0.08
    l1: float = 1e-4


def _masked_min(min_distances: torch.Tensor, mask: torch.Tensor, max_dist: float) -> torch.Tensor:
    inverted, _ = torch.max((max_dist - min_distances) * mask, dim=1)
    return max_dist - inverted


def cluster_cost(min_distances: torch.Tensor, own_class: torch.Tensor, max_dist: float) -> torch.Tensor:
    """Mean over images of the distance to the closest prototype of the image's class.

    min_distances (B, P); own_class (B, P) 1 where prototype j belongs to y_i.
    """
    return _masked_min(min_distances, own_class, max_dist).mean()


def separation_cost(min_distances: torch.Tensor, own_class: torch.Tensor, max_dist: float) -> torch.Tensor:
    """Mean over images of the distance to the closest prototype of another class."""
    return _masked_min(min_distances, 1 - own_class, max_dist).mean()


def l1_wrong_class(last_layer_weight: torch.Tensor, prototype_class_identity: torch.Tensor) -> torch.Tensor:
    """L1 norm of the last-layer weights from prototypes to classes not their own."""
    return (last_layer_weight * (1 - prototype_class_identity.t())).norm(p=1)


def protopnet_loss(logits: torch.Tensor, min_distances: torch.Tensor, labels: torch.Tensor,
                   prototype_class_identity: torch.Tensor, last_layer_weight: torch.Tensor,
                   prototype_shape: tuple[int, ...],
                   coefs: LossCoefficients = LossCoefficients()) -> tuple[torch.Tensor, dict[str, float]]:
    """The total loss and its terms (as floats, for progress bars)."""
    max_dist = float(prototype_shape[1] * prototype_shape[2] * prototype_shape[3])
    own_class = prototype_class_identity[:, labels].t()
    ce = F.cross_entropy(logits, labels)
    cluster = cluster_cost(min_distances, own_class, max_dist)
    separation = separation_cost(min_distances, own_class, max_dist)
    l1 = l1_wrong_class(last_layer_weight, prototype_class_identity)
    loss = (coefs.cross_entropy * ce + coefs.cluster * cluster
            + coefs.separation * separation + coefs.l1 * l1)
    terms = {"ce": ce.item(), "clst": cluster.item(), "sep": separation.item(), "l1": l1.item()}
    return loss, terms
