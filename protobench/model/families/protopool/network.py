"""ProtoPool (Rymarczyk et al., ECCV 2022), as in gmum's ``protopool/model.py``.

A pool of P prototypes shared between classes. Each class has n *slots*;
``proto_presence`` (C, P, n) holds, per slot, logits over the pool, and a
slot is filled by a (Gumbel-)softmax over them. A slot's score is the
*focal similarity* of its prototype: the log similarity of the nearest
latent patch minus that of the mean patch distance,

    s(c, n) = sim(min_hw d_p) - sim(mean_hw d_p),   p the prototype of slot (c, n)

and the logits are ``last_layer`` over the C * n slot scores (weight 1 from
a class's own slots, 0 elsewhere at the start), or their per-class sum
without a last layer.

``PoolNet`` keeps the original's parameter names, so that a ProtoPool
checkpoint loads key for key. It offers the same methods as
:class:`~protobench.model.families.protopnet.network.PPNet` (``prototype_distances``,
``distance_2_similarity``, ``forward_from_distances``, ``push_forward``,
``prototype_class_identity``), so protobench's pixel-space wrapper, push,
attacks and metrics take it unchanged.

Slots. In training each slot is a Gumbel-softmax sample at the current
``gumbel_scale`` (0: a plain softmax), as in the original. In eval mode a
slot holds the single prototype with the largest logit: the original's
default forward, a Gumbel-softmax of the logits times 1e4 at temperature
0.5, is that one-hot assignment up to noise of order exp(-1e4 * gap).

Similarity maps (what the attacks and metrics read): each prototype's log
similarity log((d+1)/(d+1e-4)) per latent cell, the map ProtoPool's own
prototype visualisations upsample. The logits use the focal similarity; its
mean term is one number per (image, prototype), so the map's peak is where
the focal score's peak is.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from protobench.errors import ProtobenchError
from protobench.model.families.protopnet.network import L2Prototypes, make_add_on_layers

ACTIVATIONS = ("log", "linear")  # "linear": ProtoPool's 1 / (d + 1)


class PoolNet(L2Prototypes, nn.Module):
    """The ProtoPool network on normalised images.

    Args:
        features: backbone with ``out_channels``.
        img_size: input side in pixels.
        num_prototypes: P, the shared pool.
        slots_per_class: n (the original's ``num_descriptive``).
        num_classes: C.
        prototype_depth: D.
        proto_layer_rf_info: [n, jump, rf, start] of the prototype cells.
        prototype_activation_function: 'log' or 'linear' (1 / (d + 1)).
        use_last_layer: a last layer over the slots (the original's
            ``--last_layer``); without it a class's logit is the sum of its slots.
    """

    def __init__(self, features: nn.Module, img_size: int, num_prototypes: int, slots_per_class: int,
                 num_classes: int, prototype_depth: int, proto_layer_rf_info: Sequence[float],
                 prototype_activation_function: str = "log", use_last_layer: bool = True,
                 init_weights: bool = True) -> None:
        super().__init__()
        if prototype_activation_function not in ACTIVATIONS:
            raise ProtobenchError(f"unknown ProtoPool activation {prototype_activation_function!r}; "
                                  f"choose one of: {', '.join(ACTIVATIONS)}")
        if slots_per_class > num_prototypes:
            raise ProtobenchError(f"{slots_per_class} slots per class need at least as many "
                                  f"prototypes in the pool, got {num_prototypes}")
        self.img_size = img_size
        self.num_prototypes = num_prototypes
        self.num_descriptive = slots_per_class
        self.num_classes = num_classes
        self.prototype_shape = (num_prototypes, prototype_depth, 1, 1)
        self.epsilon = 1e-4
        self.prototype_activation_function = prototype_activation_function
        self.proto_layer_rf_info = list(proto_layer_rf_info)
        self.use_last_layer = use_last_layer
        self.gumbel_scale = 0.0  # set per epoch by the trainer; only read in training mode
        self.last_presence: torch.Tensor | None = None  # the slots of the last training forward

        self.features = features
        self.add_on_layers = make_add_on_layers(features.out_channels, prototype_depth, "linear")
        self.prototype_vectors = nn.Parameter(torch.rand(self.prototype_shape))
        self.ones = nn.Parameter(torch.ones(self.prototype_shape), requires_grad=False)
        self.proto_presence = nn.Parameter(torch.zeros(num_classes, num_prototypes, slots_per_class))
        slots = torch.zeros(num_classes * slots_per_class, num_classes)
        slots[torch.arange(len(slots)), torch.arange(len(slots)) // slots_per_class] = 1
        self.register_buffer("slot_class_identity", slots, persistent=False)  # (C * n, C)
        self.last_layer: nn.Module = (nn.Linear(num_classes * slots_per_class, num_classes, bias=False)
                                      if use_last_layer else nn.Identity())
        if init_weights:
            self._initialize_weights()

    # ------------------------------------------------------------- slots
    def presence(self) -> torch.Tensor:
        """(C, P, n): which prototype fills each slot; one-hot in eval mode."""
        if not self.training:
            chosen = self.proto_presence.argmax(dim=1)  # (C, n)
            return F.one_hot(chosen, self.num_prototypes).permute(0, 2, 1).to(self.proto_presence.dtype)
        if self.gumbel_scale == 0:
            return torch.softmax(self.proto_presence, dim=1)
        return F.gumbel_softmax(self.proto_presence * self.gumbel_scale, tau=0.5, dim=1)

    @property
    def slot_prototypes(self) -> torch.Tensor:
        """(C, n) long: the prototype of every slot (the original's ``get_map_class_to_prototypes``)."""
        return self.proto_presence.argmax(dim=1)

    def slot_counts(self) -> torch.Tensor:
        """(P, C): how many slots of class c prototype p fills."""
        counts = torch.zeros(self.num_prototypes, self.num_classes, device=self.proto_presence.device)
        chosen = self.slot_prototypes
        classes = torch.arange(self.num_classes, device=chosen.device).repeat_interleave(self.num_descriptive)
        return counts.index_put_((chosen.flatten(), classes), torch.ones_like(classes, dtype=counts.dtype),
                                 accumulate=True)

    @property
    def prototype_class_identity(self) -> torch.Tensor:
        """(P, C) float: 1 where prototype p fills a slot of class c (a prototype may serve many)."""
        return (self.slot_counts() > 0).float()

    @property
    def prototype_class(self) -> torch.Tensor:
        """(P,) long: the class with the most slots on each prototype (ties: the lower
        class index); -1 for a prototype that fills no slot."""
        counts = self.slot_counts()
        best = counts.argmax(dim=1)
        return torch.where(counts.sum(dim=1) > 0, best, torch.full_like(best, -1))

    def prototype_weights(self) -> torch.Tensor:
        """(C, P): the weight of each prototype's focal similarity in each class's logit."""
        presence = self.presence().detach()  # (C, P, n)
        if not self.use_last_layer:
            return presence.sum(dim=2)
        weight = self.last_layer.weight.view(self.num_classes, self.num_classes, self.num_descriptive)
        return torch.einsum("kcn,cpn->kp", weight, presence)

    # ------------------------------------------------------------ forward
    def distance_2_similarity(self, distances: torch.Tensor) -> torch.Tensor:
        if self.prototype_activation_function == "log":
            return torch.log((distances + 1) / (distances + self.epsilon))
        return 1 / (distances + 1)

    def forward_from_distances(self, distances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, C), min_distances (B, P)) from the distance maps."""
        presence = self.presence()
        if self.training:
            self.last_presence = presence
        min_distances = -F.max_pool2d(-distances, kernel_size=distances.shape[2:]).flatten(1)
        mean_distances = distances.mean(dim=(2, 3))
        with torch.autocast(distances.device.type, enabled=False):  # the head stays fp32
            presence = presence.float()
            near = torch.einsum("bp,cpn->bcn", min_distances.float(), presence)
            mean = torch.einsum("bp,cpn->bcn", mean_distances.float(), presence)
            focal = self.distance_2_similarity(near) - self.distance_2_similarity(mean)
            logits = self.last_layer(focal.flatten(1)) if self.use_last_layer else focal.sum(dim=2)
        return logits, min_distances

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_from_distances(self.prototype_distances(x))

    # --------------------------------------------------------- last layer
    def set_last_layer_incorrect_connection(self, incorrect_strength: float = 0.0) -> None:
        """Weight 1 from a class's own slots, ``incorrect_strength`` (the original: 0) elsewhere."""
        if self.use_last_layer:
            own = self.slot_class_identity.t()
            self.last_layer.weight.data.copy_(own + incorrect_strength * (1 - own))

    def _initialize_weights(self) -> None:
        nn.init.xavier_normal_(self.proto_presence, gain=1.0)
        for m in self.add_on_layers.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
        self.set_last_layer_incorrect_connection(0.0)
