"""Prototype models: backbones, the families' networks (model/families/), the pixel-space
classifier that wraps any of them, and checkpoints."""

import warnings

from protobench.model.backbones import BACKBONES, create_backbone
from protobench.model.checkpoint import load_checkpoint, save_checkpoint
from protobench.model.classifier import (
    Architecture, ModelMeta, PrototypeClassifier, ProtoPNet, build_network, build_ppnet,
)
from protobench.model.families import FAMILIES, Family, PrototypeNetwork, get_family, register_family
from protobench.model.families.pipnet import PIPNetwork
from protobench.model.families.protopnet import PPNet
from protobench.model.families.protopool import PoolNet
from protobench.model.families.tesnet import TesNetwork
from protobench.model.receptive_field import (
    ConvInfo,
    high_activation_box,
    proto_layer_rf_info,
    rf_box,
)

# the per-family wrappers of earlier versions: one PrototypeClassifier serves every family now
_FORMER_WRAPPERS = {"ProtoPool": "protopool", "PIPNet": "pipnet", "TesNet": "tesnet"}


def __getattr__(name: str):
    if name in _FORMER_WRAPPERS:
        warnings.warn(f"protobench.model.{name} is deprecated: every family's model is a "
                      f"PrototypeClassifier; test model.family == {_FORMER_WRAPPERS[name]!r}",
                      DeprecationWarning, stacklevel=2)
        return PrototypeClassifier
    raise AttributeError(f"module 'protobench.model' has no attribute {name!r}")


__all__ = [
    "BACKBONES", "create_backbone", "load_checkpoint", "save_checkpoint",
    "Architecture", "ModelMeta", "PrototypeClassifier", "ProtoPNet", "build_network", "build_ppnet",
    "FAMILIES", "Family", "PrototypeNetwork", "get_family", "register_family",
    "PPNet", "PoolNet", "PIPNetwork", "TesNetwork",
    "ConvInfo", "high_activation_box", "proto_layer_rf_info", "rf_box",
]
