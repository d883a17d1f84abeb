"""TesNet (Wang et al., "Interpretable Image Recognition by Constructing Transparent
Embedding Space", ICCV 2021).

ProtoPNet's structure (``features`` -> ``add_on_layers`` -> ``prototype_vectors``
-> ``last_layer``, the same parameter names), with another prototype layer:
each class's prototypes are basis vectors of a subspace, kept near
orthonormal by the loss, and a prototype's activation at a latent patch z is
the patch's *projection* onto its unit basis vector,

    projection_j(z) = <z, p_j / ||p_j||>,   logits = last_layer(max_hw projection)

The cosine distance -cos(z, p_j) is what the training loss clusters and
separates (``forward`` returns its minimum per prototype, as the original's
does); the prototypes are renormalised to unit length after every optimiser
step (``after_step``).

Similarity maps (what the attacks and metrics read, and what TesNet's own
local analysis draws) are the projections. protobench's "distance" for
TesNet is minus the projection, the original's push convention: push moves
each prototype onto the training patch of its class with the largest
projection. It is not a latent distance, and the realism report leaves the
distance ratio out for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from protobench.model.families.protopnet.network import PPNet


class TesNetwork(PPNet):
    """The TesNet network on normalised images (the arguments of :class:`PPNet`;
    the activation function does not apply: the similarity is the projection)."""

    has_last_layer_stage = True  # recorded as 'linear', yet its main.py trains the last layer

    def unit_prototypes(self) -> torch.Tensor:
        """(P, D, 1, 1): the basis vectors at unit length."""
        return F.normalize(self.prototype_vectors, p=2, dim=1)

    def projections(self, z: torch.Tensor) -> torch.Tensor:
        """(B, P, h, w): every latent patch projected onto every unit basis vector."""
        with torch.autocast(z.device.type, enabled=False):  # the head stays fp32
            return F.conv2d(z.float(), self.unit_prototypes())

    def cosine_distances(self, z: torch.Tensor) -> torch.Tensor:
        """(B, P, h, w): -cos(z, p_j), what the cluster and separation terms read."""
        with torch.autocast(z.device.type, enabled=False):
            return -F.conv2d(F.normalize(z.float(), p=2, dim=1), self.unit_prototypes())

    # ------------------------------------------------------------ forward
    def prototype_distances(self, x: torch.Tensor) -> torch.Tensor:
        """-projection (B, P, h, w): protobench's stand-in for a distance (module docstring)."""
        return -self.projections(self.conv_features(x))

    def distance_2_similarity(self, distances: torch.Tensor) -> torch.Tensor:
        return -distances

    # forward_from_distances is ProtoPNet's: logits = last_layer(max projection)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, C), min cosine distance (B, P)), as the original returns (the loss)."""
        z = self.conv_features(x)
        logits, _ = self.forward_from_distances(-self.projections(z))
        cosine = self.cosine_distances(z)
        return logits, -F.max_pool2d(-cosine, kernel_size=cosine.shape[2:]).flatten(1)

    def push_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(latent patches (B, D, h, w), -projection (B, P, h, w)) for push."""
        z = self.conv_features(x)
        return z, -self.projections(z)

    # ------------------------------------------------------------ training
    @torch.no_grad()
    def after_step(self) -> None:
        """Back to unit basis vectors after an optimiser step, as the original does."""
        self.prototype_vectors.copy_(self.unit_prototypes())

    def class_bases(self) -> torch.Tensor:
        """(C, n, D): each class's basis vectors as rows (prototypes of a class are consecutive)."""
        c, p = self.num_classes, self.num_prototypes
        return self.prototype_vectors.reshape(c, p // c, -1)
