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

ProtoPool (Rymarczyk et al. 2022; gmum's ``protopool/main.py``) uses the same
terms with its slots: "own class" are the n prototypes the image's class
weighs most (the top n of its slots' presence summed over slots, detached),
"other" the rest; plus an orthogonality term that keeps a class's slots on
different prototypes, and the L1 term on the slot-to-class weights.

TesNet (Wang et al. 2021; its ``train_and_test.py``) clusters and separates
on cosine distances (-cos, its ``forward``'s second output) with the same
formulas (``max_dist`` = D), and adds two terms on each class's basis B_c
(n, D): orthogonality sum_c ||B_c B_c^T - I||_1, to be small, and subspace
separation sum over class pairs of ||B_c^T B_c - B_c'^T B_c'||_F / sqrt(2),
to be large (its coefficient is negative).
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
    orthogonal: float = 1.0  # ProtoPool's; TesNet's default is 1e-4 (its family's loss_defaults)
    subspace_separation: float = -1e-7  # TesNet only


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


def _top_slots(weights: torch.Tensor, count: int) -> torch.Tensor:
    """(B, P) 1 on the ``count`` largest entries of each row of ``weights`` (B, P)."""
    mask = torch.zeros_like(weights)
    return mask.scatter_(1, weights.topk(count, dim=1).indices, 1.0)


def slot_orthogonality(proto_presence: torch.Tensor) -> torch.Tensor:
    """ProtoPool's orthogonal loss on the slot logits (C, P, n): the cosines between
    different slots of a class, summed and divided by C * n (0 when every
    class's slots point at different prototypes). Written as the original
    writes it: the sum of all (C, n, n) cosines over C * n, minus 1."""
    c, _, n = proto_presence.shape
    cos = F.cosine_similarity(proto_presence.unsqueeze(2), proto_presence.unsqueeze(-1), dim=1)
    return cos.sum() / (n * c) - 1


def protopool_loss(logits: torch.Tensor, min_distances: torch.Tensor, labels: torch.Tensor,
                   presence: torch.Tensor, proto_presence: torch.Tensor,
                   last_layer_weight: torch.Tensor | None, slot_class_identity: torch.Tensor,
                   prototype_shape: tuple[int, ...],
                   coefs: LossCoefficients = LossCoefficients()) -> tuple[torch.Tensor, dict[str, float]]:
    """ProtoPool's loss: CE + 0.8 cluster - 0.08 separation + orthogonal + 1e-4 L1.

    presence (C, P, n): the slots this forward pass used (a Gumbel sample in
    training); proto_presence (C, P, n): the slot logits (the orthogonal term);
    last_layer_weight (C, C * n) or None without a last layer.
    """
    max_dist = float(prototype_shape[1] * prototype_shape[2] * prototype_shape[3])
    num_p, slots = presence.shape[1], presence.shape[2]
    weights = presence[labels].sum(dim=2).detach()  # (B, P)
    own = _top_slots(weights, slots)
    other = _top_slots(slots - weights, num_p - slots)  # the original's inverted presence
    ce = F.cross_entropy(logits, labels)
    cluster = _masked_min(min_distances, own, max_dist).mean()
    separation = _masked_min(min_distances, other, max_dist).mean()
    orthogonal = slot_orthogonality(proto_presence)
    l1 = (torch.zeros((), device=logits.device) if last_layer_weight is None
          else l1_wrong_class(last_layer_weight, slot_class_identity))
    loss = (coefs.cross_entropy * ce + coefs.cluster * cluster + coefs.separation * separation
            + coefs.orthogonal * orthogonal + coefs.l1 * l1)
    terms = {"ce": ce.item(), "clst": cluster.item(), "sep": separation.item(), "l1": l1.item()}
    return loss, terms


def basis_orthogonality(bases: torch.Tensor) -> torch.Tensor:
    """TesNet's orthogonality term: sum_c ||B_c B_c^T - I||_1 over bases (C, n, D)."""
    eye = torch.eye(bases.shape[1], device=bases.device, dtype=bases.dtype)
    return (bases @ bases.transpose(1, 2) - eye).abs().sum()


def subspace_separation(bases: torch.Tensor) -> torch.Tensor:
    """TesNet's subspace separation: the Frobenius distances between the classes'
    projection operators B_c^T B_c, summed over ordered class pairs, halved,
    over sqrt(2) (the original's sum includes each pair twice and the zero
    diagonal, left out here: its norm has no gradient at 0)."""
    operators = bases.transpose(1, 2) @ bases  # (C, D, D)
    c = len(operators)
    first, second = torch.triu_indices(c, c, offset=1, device=bases.device)
    distances = (operators[first] - operators[second]).flatten(1).norm(dim=1)
    return distances.sum() / 2 ** 0.5


def tesnet_loss(logits: torch.Tensor, min_cosine: torch.Tensor, labels: torch.Tensor,
                prototype_class_identity: torch.Tensor, last_layer_weight: torch.Tensor,
                prototype_shape: tuple[int, ...], bases: torch.Tensor,
                coefs: LossCoefficients = LossCoefficients()) -> tuple[torch.Tensor, dict[str, float]]:
    """TesNet's loss: ProtoPNet's on cosine distances (CE, cluster, separation, L1)
    + orth orthogonality + sub_sep subspace separation of the bases (C, n, D)."""
    loss, terms = protopnet_loss(logits, min_cosine, labels, prototype_class_identity,
                                 last_layer_weight, prototype_shape, coefs)
    loss = (loss + coefs.orthogonal * basis_orthogonality(bases)
            + coefs.subspace_separation * subspace_separation(bases))
    return loss, terms


def _protopnet_terms(net, logits, min_distances, labels, coefs):
    return protopnet_loss(logits, min_distances, labels, net.prototype_class_identity,
                          net.last_layer.weight, net.prototype_shape, coefs)


def _protopool_terms(net, logits, min_distances, labels, coefs):
    weight = net.last_layer.weight if net.use_last_layer else None
    return protopool_loss(logits, min_distances, labels, net.last_presence, net.proto_presence,
                          weight, net.slot_class_identity, net.prototype_shape, coefs)


def _tesnet_terms(net, logits, min_cosine, labels, coefs):
    # min_cosine: TesNet's forward returns its minimum cosine distances
    return tesnet_loss(logits, min_cosine, labels, net.prototype_class_identity,
                       net.last_layer.weight, net.prototype_shape, net.class_bases(), coefs)


# A family's ``loss`` names its entry: (network, logits, its forward's second output,
# labels, coefficients) -> (loss, terms). PIP-Net's loss is its own procedure's
# (training/pipnet.py), so it has none here.
LOSSES = {"protopnet": _protopnet_terms, "protopool": _protopool_terms, "tesnet": _tesnet_terms}


def training_loss(model, logits: torch.Tensor, min_distances: torch.Tensor, labels: torch.Tensor,
                  coefs: LossCoefficients) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of ``model``'s family (a :class:`~protobench.model.PrototypeClassifier`),
    after a training forward pass of its network."""
    return LOSSES[model.rules.loss](model.net, logits, min_distances, labels, coefs)
