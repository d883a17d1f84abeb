"""Prototype models (ProtoPNet, ProtoPool, PIP-Net, TesNet): backbones, networks, pixel-space wrappers, checkpoints."""

from protobench.model.backbones import BACKBONES, create_backbone
from protobench.model.checkpoint import load_checkpoint, save_checkpoint
from protobench.model.ppnet import PPNet
from protobench.model.pipnet import PIPNetwork
from protobench.model.protopnet import (
    Architecture, ModelMeta, PIPNet, ProtoPNet, ProtoPool, TesNet, build_ppnet,
)
from protobench.model.protopool import PoolNet
from protobench.model.tesnet import TesNetwork
from protobench.model.receptive_field import (
    ConvInfo,
    high_activation_box,
    proto_layer_rf_info,
    rf_box,
)

__all__ = [
    "BACKBONES", "create_backbone", "load_checkpoint", "save_checkpoint", "PPNet",
    "Architecture", "ModelMeta", "ProtoPNet", "ProtoPool", "PoolNet", "PIPNet", "PIPNetwork",
    "TesNet", "TesNetwork", "build_ppnet", "ConvInfo",
    "high_activation_box", "proto_layer_rf_info", "rf_box",
]
