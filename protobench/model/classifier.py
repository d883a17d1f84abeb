"""Prototype models in [0, 1] pixel space, with the metadata that travels with them.

Attacks, metrics and explanations work in pixel space; the networks work on
normalised images. :class:`PrototypeClassifier` owns the normalisation, so
that eps means the same for every attack, and carries what a checkpoint
records (architecture, classes, recipe, push records). The architecture's
``family`` names the network's family (:mod:`protobench.model.families`):
"protopnet", "protopool", "pipnet" or "tesnet"; the wrapper is the same for
all of them, and holds the family's network as ``.net``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn as nn

from protobench.model.backbones import create_backbone
from protobench.model.families import Family, PrototypeNetwork, get_family
from protobench.model.receptive_field import proto_layer_rf_info

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Architecture:
    """Everything needed to rebuild the network before loading its weights.

    family "protopool": ``num_prototypes`` is the shared pool (P),
    ``prototypes_per_class`` the slots of each class (n), ``use_last_layer``
    whether a last layer weighs the slots. family "pipnet":
    ``num_prototypes`` 0 makes the backbone's channels the prototypes (PIP-Net's
    default), any other number adds a 1x1 convolution to that many;
    ``prototypes_per_class``, the depth and the activation do not apply.
    family "tesnet": ProtoPNet's fields; ``prototypes_per_class`` basis
    vectors of each class's subspace, 1x1, and no activation (the similarity
    is the projection; recorded as "linear", minus TesNet's "distance").
    """

    family: str = "protopnet"
    backbone: str = "smallcnn"
    img_size: int = 64
    num_classes: int = 10
    prototypes_per_class: int = 10
    prototype_depth: int = 128
    prototype_size: int = 1
    prototype_activation_function: str = "log"
    add_on_layers_type: str = "bottleneck"
    backbone_module: str = ""  # a user backbone: the module that registers it
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    num_prototypes: int = 0    # protopool: the pool; protopnet: classes * prototypes_per_class
    use_last_layer: bool = True  # protopool only

    def __post_init__(self) -> None:
        get_family(self.family).check(self)  # the family's checks and defaults

    @property
    def prototype_shape(self) -> tuple[int, int, int, int]:
        count = self.num_prototypes or self.num_classes * self.prototypes_per_class
        return (count, self.prototype_depth, self.prototype_size, self.prototype_size)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Architecture":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std"):
            if key in known:
                known[key] = tuple(float(v) for v in known[key])
        return cls(**known)


@dataclass
class ModelMeta:
    """What a checkpoint records beside the weights."""

    architecture: Architecture = field(default_factory=Architecture)
    classes: list[str] = field(default_factory=list)
    name: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    push_records: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["architecture"] = self.architecture.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelMeta":
        d = dict(d)
        d["architecture"] = Architecture.from_dict(d.get("architecture", {}))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def build_network(arch: Architecture, pretrained: bool = False) -> PrototypeNetwork:
    """An untrained (or ImageNet-initialised) network of the given architecture."""
    features = create_backbone(arch.backbone, pretrained=pretrained,
                               module=arch.backbone_module or None)
    rf_info = proto_layer_rf_info(arch.img_size, features.conv_info(), arch.prototype_size)
    return get_family(arch.family).build(arch, features, rf_info)


build_ppnet = build_network  # the name before the families had folders


class PrototypeClassifier(nn.Module):
    """A family's network (``.net``) that takes images in [0, 1] and normalises them itself.

    ``forward(x)`` returns logits only, so that classification attacks
    (torchattacks) can use it as any classifier.
    """

    def __init__(self, net: PrototypeNetwork, meta: ModelMeta) -> None:
        super().__init__()
        self.net = net
        self.meta = meta
        arch = meta.architecture
        self.register_buffer("mean", torch.tensor(arch.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(arch.std).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def build(cls, arch: Architecture, classes: list[str] | None = None, pretrained: bool = False,
              **meta: Any) -> "PrototypeClassifier":
        classes = classes or [str(c) for c in range(arch.num_classes)]
        if not arch.backbone_module:  # recorded, so that a fresh process finds a user backbone
            from protobench.model.backbones import backbone_module
            arch = replace(arch, backbone_module=backbone_module(arch.backbone) or "")
        return cls(build_network(arch, pretrained), ModelMeta(arch, list(classes), **meta))

    # --------------------------------------------------------------- views
    @property
    def family(self) -> str:
        """The architecture's family name ("protopnet", "protopool", ...)."""
        return self.meta.architecture.family

    @property
    def rules(self) -> Family:
        """The family's rules (:class:`~protobench.model.families.Family`)."""
        return get_family(self.family)

    @property
    def ppnet(self) -> PrototypeNetwork:
        """Deprecated: the network is ``.net``."""
        warnings.warn("model.ppnet is deprecated; the network is model.net", DeprecationWarning,
                      stacklevel=2)
        return self.net

    @property
    def img_size(self) -> int:
        return self.net.img_size

    @property
    def num_prototypes(self) -> int:
        return self.net.num_prototypes

    @property
    def prototype_class(self) -> torch.Tensor:
        return self.net.prototype_class

    @property
    def class_relation(self) -> torch.Tensor:
        """(P, C) bool: which classes each prototype serves (one each in ProtoPNet)."""
        return self.net.prototype_class_identity.bool()

    @property
    def rf_info(self) -> list[float]:
        return self.net.proto_layer_rf_info

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    # ------------------------------------------------------------- forward
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of images x (B, 3, H, W) in [0, 1]."""
        return self.net(self.normalize(x))[0]

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Similarity of every prototype at every cell, (B, P, h, w), for x in [0, 1]."""
        return self.net.similarity_maps(self.normalize(x))

    def attack_maps(self, x: torch.Tensor) -> torch.Tensor:
        """What the attacks' objectives ascend, (B, P, h, w): a strictly increasing function
        of the similarity per cell (the similarity itself; PIP-Net's presence log-odds)."""
        return self.net.attack_maps(self.normalize(x))

    def explain(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass: (logits (B, C), min_distances (B, P), similarity maps (B, P, h, w));
        for PIP-Net the "distances" are 1 - presence (its network.py)."""
        distances = self.net.prototype_distances(self.normalize(x))
        logits, min_distances = self.net.forward_from_distances(distances)
        return logits, min_distances, self.net.distance_2_similarity(distances)

    def attack_maps_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(attack maps, logits): one pass where the attack maps are the similarity maps,
        two where they are not (PIP-Net's log-odds)."""
        if not self.rules.attack_maps_are_similarity:
            return self.attack_maps(x), self(x)
        logits, _, maps = self.explain(x)
        return maps, logits


ProtoPNet = PrototypeClassifier  # the wrapper's name before it served every family
