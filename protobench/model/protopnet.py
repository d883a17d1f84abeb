"""Prototype models in [0, 1] pixel space, with the metadata that travels with them.

Attacks, metrics and explanations work in pixel space; the network works on
normalised images. :class:`ProtoPNet` owns the normalisation, so that eps
means the same for every attack, and carries what a checkpoint records
(architecture, classes, recipe, push records). The architecture's
``family`` picks the network: "protopnet" (:class:`PPNet`), "protopool"
(:class:`~protobench.model.protopool.PoolNet`, wrapped as :class:`ProtoPool`),
"pipnet" (:class:`~protobench.model.pipnet.PIPNetwork`, wrapped as
:class:`PIPNet`) or "tesnet" (:class:`~protobench.model.tesnet.TesNetwork`,
wrapped as :class:`TesNet`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn as nn

from protobench.model.backbones import create_backbone
from protobench.errors import ProtobenchError
from protobench.model.ppnet import ADD_ON_TYPES, PPNet
from protobench.model.pipnet import PIPNetwork
from protobench.model.protopool import PoolNet
from protobench.model.receptive_field import proto_layer_rf_info
from protobench.model.tesnet import TesNetwork

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FAMILIES = ("protopnet", "protopool", "pipnet", "tesnet")


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
        if self.family not in FAMILIES:
            raise ProtobenchError(f"unknown model family {self.family!r}; choose one of: "
                                  f"{', '.join(FAMILIES)}")
        if self.family == "protopool":
            if self.num_prototypes < 1:
                raise ProtobenchError("a protopool model needs num_prototypes (the shared pool), "
                                      f"got {self.num_prototypes!r}")
            if self.prototype_size != 1:
                raise ProtobenchError("ProtoPool's prototypes are 1x1; prototype_size must be 1")
            if self.add_on_layers_type == "bottleneck":  # the default: ProtoPool has one add-on
                self.add_on_layers_type = "linear"
            if self.add_on_layers_type != "linear":
                raise ProtobenchError("ProtoPool's add-on layers are 'linear' (1x1 conv, Sigmoid); "
                                      f"got add_on_layers_type={self.add_on_layers_type!r}")
        elif self.family == "pipnet":
            if self.num_prototypes < 0:
                raise ProtobenchError("num_prototypes of a pipnet model must be >= 0 (0: the "
                                      f"backbone's channels), got {self.num_prototypes!r}")
            if self.add_on_layers_type == "bottleneck":  # the default: PIP-Net's add-on is a softmax
                self.add_on_layers_type = "softmax"
            self.prototype_activation_function = "presence"
        elif self.family == "tesnet":
            if self.prototype_size != 1:
                raise ProtobenchError("TesNet's basis vectors are 1x1; prototype_size must be 1")
            self.prototype_activation_function = "linear"
        if self.family in ("protopnet", "tesnet") and self.add_on_layers_type not in ADD_ON_TYPES:
            raise ProtobenchError(f"unknown add_on_layers_type {self.add_on_layers_type!r}; choose "
                                  f"one of: {', '.join(ADD_ON_TYPES)}")
        if self.family in ("protopnet", "tesnet") and self.num_prototypes:
            raise ProtobenchError(f"num_prototypes is ProtoPool's pool size; a {self.family} model "
                                  "has prototypes_per_class prototypes of each class")

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


def build_ppnet(arch: Architecture, pretrained: bool = False
                ) -> PPNet | PoolNet | PIPNetwork | TesNetwork:
    """An untrained (or ImageNet-initialised) network of the given architecture."""
    features = create_backbone(arch.backbone, pretrained=pretrained,
                               module=arch.backbone_module or None)
    rf_info = proto_layer_rf_info(arch.img_size, features.conv_info(), arch.prototype_size)
    if arch.family == "pipnet":
        return PIPNetwork(features, arch.img_size, arch.num_prototypes, arch.num_classes, rf_info)
    if arch.family == "protopool":
        return PoolNet(features, arch.img_size, arch.num_prototypes, arch.prototypes_per_class,
                       arch.num_classes, arch.prototype_depth, rf_info,
                       prototype_activation_function=arch.prototype_activation_function,
                       use_last_layer=arch.use_last_layer)
    network = TesNetwork if arch.family == "tesnet" else PPNet
    return network(features, arch.img_size, arch.prototype_shape, rf_info, arch.num_classes,
                 prototype_activation_function=arch.prototype_activation_function,
                 add_on_layers_type=arch.add_on_layers_type)


class ProtoPNet(nn.Module):
    """A :class:`PPNet` that takes images in [0, 1] and normalises them itself.

    ``forward(x)`` returns logits only, so that classification attacks
    (torchattacks) can use it as any classifier. ``ProtoPNet.build`` gives
    the wrapper of the architecture's family (:class:`ProtoPool` for
    "protopool").
    """

    family = "protopnet"

    def __init__(self, ppnet: PPNet | PoolNet | PIPNetwork, meta: ModelMeta) -> None:
        super().__init__()
        self.ppnet = ppnet
        self.meta = meta
        arch = meta.architecture
        self.register_buffer("mean", torch.tensor(arch.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(arch.std).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def build(cls, arch: Architecture, classes: list[str] | None = None, pretrained: bool = False,
              **meta: Any) -> "ProtoPNet":
        classes = classes or [str(c) for c in range(arch.num_classes)]
        if cls is ProtoPNet and arch.family != cls.family:
            cls = {"protopool": ProtoPool, "pipnet": PIPNet, "tesnet": TesNet}[arch.family]
        if not arch.backbone_module:  # recorded, so that a fresh process finds a user backbone
            from protobench.model.backbones import backbone_module
            arch = replace(arch, backbone_module=backbone_module(arch.backbone) or "")
        return cls(build_ppnet(arch, pretrained), ModelMeta(arch, list(classes), **meta))

    # --------------------------------------------------------------- views
    @property
    def img_size(self) -> int:
        return self.ppnet.img_size

    @property
    def num_prototypes(self) -> int:
        return self.ppnet.num_prototypes

    @property
    def prototype_class(self) -> torch.Tensor:
        return self.ppnet.prototype_class

    @property
    def class_relation(self) -> torch.Tensor:
        """(P, C) bool: which classes each prototype serves (one each in ProtoPNet)."""
        return self.ppnet.prototype_class_identity.bool()

    @property
    def rf_info(self) -> list[float]:
        return self.ppnet.proto_layer_rf_info

    @property
    def device(self) -> torch.device:
        return next(self.ppnet.parameters()).device

    # ------------------------------------------------------------- forward
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of images x (B, 3, H, W) in [0, 1]."""
        return self.ppnet(self.normalize(x))[0]

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Similarity of every prototype at every cell, (B, P, h, w), for x in [0, 1]."""
        return self.ppnet.similarity_maps(self.normalize(x))

    def attack_maps(self, x: torch.Tensor) -> torch.Tensor:
        """What the attacks' objectives ascend, (B, P, h, w): a strictly increasing function
        of the similarity per cell (the similarity itself; PIP-Net's presence log-odds)."""
        return self.ppnet.attack_maps(self.normalize(x))

    def explain(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass: (logits (B, C), min_distances (B, P), similarity maps (B, P, h, w));
        for PIP-Net the "distances" are 1 - presence (:mod:`protobench.model.pipnet`)."""
        distances = self.ppnet.prototype_distances(self.normalize(x))
        logits, min_distances = self.ppnet.forward_from_distances(distances)
        return logits, min_distances, self.ppnet.distance_2_similarity(distances)

    def attack_maps_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(attack maps, logits) in one pass: here the attack maps are the similarity maps."""
        logits, _, maps = self.explain(x)
        return maps, logits


class ProtoPool(ProtoPNet):
    """A :class:`~protobench.model.protopool.PoolNet` in [0, 1] pixel space.

    Its ``prototype_class`` is each prototype's main class (most slots; -1
    for a prototype in no slot); ``ppnet.prototype_class_identity`` (P, C)
    holds every class a shared prototype serves.
    """

    family = "protopool"


class PIPNet(ProtoPNet):
    """A :class:`~protobench.model.pipnet.PIPNetwork` in [0, 1] pixel space.

    Its similarity maps are the prototypes' presence per cell (softmax over
    prototypes); ``prototype_class`` is the class of each prototype's largest
    classifier weight (-1 where all are 0), and ``class_relation`` every class
    with a positive weight.
    """

    family = "pipnet"

    def attack_maps_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(presence log-odds, logits): two passes, the log-odds are not the similarity maps."""
        return self.attack_maps(x), self(x)


class TesNet(ProtoPNet):
    """A :class:`~protobench.model.tesnet.TesNetwork` in [0, 1] pixel space.

    Its similarity maps are each patch's projection onto each prototype's
    unit basis vector; each prototype belongs to one class, as in ProtoPNet.
    """

    family = "tesnet"
