"""ProtoPNet (Chen et al., "This Looks Like That", NeurIPS 2019).

``PPNet`` keeps the original's structure and public names so that its
numbers mean the same: ``features`` -> ``add_on_layers`` -> prototype layer
(``prototype_vectors``, squared L2 distance to every latent patch) -> global
min pooling -> similarity -> ``last_layer`` (no bias). It works on
*normalised* images, as the original does; :class:`protobench.model.ProtoPNet`
wraps it for [0, 1] pixel space.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from protobench.errors import ProtobenchError

ACTIVATIONS = ("log", "linear")
ADD_ON_TYPES = ("regular", "bottleneck", "linear")


def make_add_on_layers(in_channels: int, depth: int, kind: str) -> nn.Sequential:
    """The original add-on layers between backbone and prototypes.

    'regular': 1x1 conv, ReLU, 1x1 conv, Sigmoid. 'bottleneck': halve the
    channels with (1x1 conv, ReLU, 1x1 conv, ReLU) pairs until ``depth`` is
    reached, the last activation being a Sigmoid. 'linear': 1x1 conv,
    Sigmoid (ProtoPool's add-on).
    """
    if kind == "linear":
        return nn.Sequential(nn.Conv2d(in_channels, depth, 1), nn.Sigmoid())
    if kind == "regular":
        return nn.Sequential(nn.Conv2d(in_channels, depth, 1), nn.ReLU(),
                             nn.Conv2d(depth, depth, 1), nn.Sigmoid())
    if kind != "bottleneck":
        raise ProtobenchError(f"unknown add-on layers {kind!r}; choose one of: {', '.join(ADD_ON_TYPES)}")
    layers: list[nn.Module] = []
    current = in_channels
    while current > depth or not layers:
        out = max(depth, current // 2)
        layers += [nn.Conv2d(current, out, 1), nn.ReLU(), nn.Conv2d(out, out, 1)]
        layers.append(nn.ReLU() if out > depth else nn.Sigmoid())
        current //= 2
    return nn.Sequential(*layers)


def l2_distances(z: torch.Tensor, prototypes: torch.Tensor, ones: torch.Tensor) -> torch.Tensor:
    """Squared L2 distance of every prototype to every latent patch.

    z (B, D, h, w), prototypes (P, D, ph, pw), ones = ones_like(prototypes).
    Returns (B, P, h - ph + 1, w - pw + 1), computed as
    ||z||^2 - 2 z.p + ||p||^2 and clamped at 0 (the expansion can dip below 0
    in floating point). Always in fp32, also under autocast: the expansion
    cancels near a prototype (protobench.attacks.acceleration).
    """
    with torch.autocast(z.device.type, enabled=False):
        z = z.float()
        z2_patch_sum = F.conv2d(z ** 2, ones)
        p2 = (prototypes ** 2).sum(dim=(1, 2, 3)).view(-1, 1, 1)
        zp = F.conv2d(z, prototypes)
        return F.relu(z2_patch_sum - 2 * zp + p2)


class L2Prototypes:
    """The latent patches and squared L2 prototype distances that ProtoPNet and
    ProtoPool share: a network with ``features``, ``add_on_layers``,
    ``prototype_vectors``, ``ones`` and ``distance_2_similarity``."""

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """Latent patches z = add_on(features(x)): (B, D, h, w)."""
        return self.add_on_layers(self.features(x))

    def prototype_distances(self, x: torch.Tensor) -> torch.Tensor:
        """Squared L2 distances (B, P, h', w') of every prototype to every patch."""
        return l2_distances(self.conv_features(x), self.prototype_vectors, self.ones)

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Similarity of every prototype at every cell: (B, P, h', w')."""
        return self.distance_2_similarity(self.prototype_distances(x))

    def attack_maps(self, x: torch.Tensor) -> torch.Tensor:
        """What the attacks' objectives ascend: the similarity maps themselves."""
        return self.similarity_maps(x)

    def push_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(latent patches (B, D, h, w), distances (B, P, h', w')) for push."""
        z = self.conv_features(x)
        return z, l2_distances(z, self.prototype_vectors, self.ones)


class PPNet(L2Prototypes, nn.Module):
    """The ProtoPNet network on normalised images.

    Args:
        features: backbone with ``out_channels`` (see ``backbones``).
        img_size: input side in pixels.
        prototype_shape: (P, D, ph, pw); usually (10 * classes, 128, 1, 1).
        proto_layer_rf_info: [n, jump, rf, start] of the prototype cells.
        num_classes: C; the P prototypes are split evenly among classes.
        prototype_activation_function: 'log' (log((d+1)/(d+eps))) or 'linear' (-d).
        add_on_layers_type: 'regular' or 'bottleneck'.
    """

    def __init__(self, features: nn.Module, img_size: int, prototype_shape: Sequence[int],
                 proto_layer_rf_info: Sequence[float], num_classes: int, init_weights: bool = True,
                 prototype_activation_function: str = "log",
                 add_on_layers_type: str = "bottleneck") -> None:
        super().__init__()
        prototype_shape = tuple(int(s) for s in prototype_shape)
        if prototype_shape[0] % num_classes:
            raise ProtobenchError(f"{prototype_shape[0]} prototypes cannot be split evenly "
                                  f"among {num_classes} classes")
        if prototype_activation_function not in ACTIVATIONS:
            raise ProtobenchError(f"unknown prototype activation {prototype_activation_function!r}; "
                                  f"choose one of: {', '.join(ACTIVATIONS)}")
        self.img_size = img_size
        self.prototype_shape = prototype_shape
        self.num_prototypes = prototype_shape[0]
        self.num_classes = num_classes
        self.epsilon = 1e-4
        self.prototype_activation_function = prototype_activation_function
        self.add_on_layers_type = add_on_layers_type
        self.proto_layer_rf_info = list(proto_layer_rf_info)

        per_class = self.num_prototypes // num_classes
        identity = torch.zeros(self.num_prototypes, num_classes)
        identity[torch.arange(self.num_prototypes), torch.arange(self.num_prototypes) // per_class] = 1
        self.register_buffer("prototype_class_identity", identity)

        self.features = features
        self.add_on_layers = make_add_on_layers(features.out_channels, prototype_shape[1],
                                                add_on_layers_type)
        self.prototype_vectors = nn.Parameter(torch.rand(prototype_shape))
        # A parameter, not a buffer, as in the original (its state_dict key is "ones").
        self.ones = nn.Parameter(torch.ones(prototype_shape), requires_grad=False)
        self.last_layer = nn.Linear(self.num_prototypes, num_classes, bias=False)
        if init_weights:
            self._initialize_weights()

    @property
    def has_last_layer_stage(self) -> bool:
        """Whether training fine-tunes the last layer alone after a push. As in the
        original's main.py, not with the 'linear' activation."""
        return self.prototype_activation_function != "linear"

    # ------------------------------------------------------------ forward
    def distance_2_similarity(self, distances: torch.Tensor) -> torch.Tensor:
        if self.prototype_activation_function == "log":
            return torch.log((distances + 1) / (distances + self.epsilon))
        return -distances

    def forward_from_distances(self, distances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Global min pooling and last layer: (logits (B, C), min_distances (B, P))."""
        # min pooling written as the original's max pooling of -d, so that
        # gradients through ties go where they went there
        min_distances = -F.max_pool2d(-distances, kernel_size=distances.shape[2:]).flatten(1)
        with torch.autocast(distances.device.type, enabled=False):  # the head stays fp32
            logits = self.last_layer(self.distance_2_similarity(min_distances.float()))
        return logits, min_distances

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, C), min_distances (B, P)), as the original returns."""
        return self.forward_from_distances(self.prototype_distances(x))

    # ------------------------------------------------------- last layer
    @property
    def prototype_class(self) -> torch.Tensor:
        """Class of each prototype: (P,) long."""
        return self.prototype_class_identity.argmax(dim=1)

    def prototype_weights(self) -> torch.Tensor:
        """(C, P): the last-layer weight of each prototype's similarity in each class's logit."""
        return self.last_layer.weight

    def set_last_layer_incorrect_connection(self, incorrect_strength: float = -0.5) -> None:
        """Weight 1 from a prototype to its own class, ``incorrect_strength`` to the others."""
        own = self.prototype_class_identity.t()
        self.last_layer.weight.data.copy_(own + incorrect_strength * (1 - own))

    def _initialize_weights(self) -> None:
        for m in self.add_on_layers.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
        self.set_last_layer_incorrect_connection(-0.5)
