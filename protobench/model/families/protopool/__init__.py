"""ProtoPool (Rymarczyk et al., ECCV 2022): the network (network.py), the import of its
original checkpoints (legacy.py) and the family's rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from protobench.model.families.base import Family, refuse
from protobench.model.families.protopool.network import ACTIVATIONS, PoolNet

LAST_LAYER_DECAY = 0.95  # ProtoPool's main.py: the fine-tuning rate x0.95 every 5 epochs
LAST_LAYER_DECAY_EVERY = 5


def gumbel_scale(epoch: int, gumbel_epochs: int) -> float:
    """ProtoPool's Gumbel-softmax scale in (0-based) training epoch ``epoch``.

    The original leaves its epoch 0 untrained, so our epoch e is its e + 1:
    1.3 * sqrt(a * (e + 1)) for e + 1 < gumbel_epochs, a = (1000 / 1.3)^2 / gumbel_epochs,
    else 1000.
    """
    step = epoch + 1
    if step >= gumbel_epochs:
        return 1000.0
    return 1.3 * float(np.sqrt((1000 / 1.3) ** 2 / gumbel_epochs * step))


class ProtoPoolFamily(Family):
    """A pool of prototypes shared by the classes' slots; the slot logits learn with the
    prototypes, through a Gumbel-softmax whose scale grows over the first epochs."""

    name = "protopool"
    summary = "ProtoPool (Rymarczyk et al. 2022): a prototype pool shared by class slots"
    network = PoolNet
    loss = "protopool"

    def check(self, arch: Any) -> None:
        refuse(arch.num_prototypes < 1, "a protopool model needs num_prototypes (the shared pool), "
                                        f"got {arch.num_prototypes!r}")
        refuse(arch.prototype_size != 1, "ProtoPool's prototypes are 1x1; prototype_size must be 1")
        if arch.add_on_layers_type == "bottleneck":  # the default: ProtoPool has one add-on
            arch.add_on_layers_type = "linear"
        refuse(arch.add_on_layers_type != "linear",
               "ProtoPool's add-on layers are 'linear' (1x1 conv, Sigmoid); got "
               f"add_on_layers_type={arch.add_on_layers_type!r}")

    def build(self, arch: Any, features: nn.Module, rf_info: list[float]) -> nn.Module:
        return PoolNet(features, arch.img_size, arch.num_prototypes, arch.prototypes_per_class,
                       arch.num_classes, arch.prototype_depth, rf_info,
                       prototype_activation_function=arch.prototype_activation_function,
                       use_last_layer=arch.use_last_layer)

    def describe_prototypes(self, arch: dict[str, Any], count: int) -> str:
        return (f"{count}, a pool shared by the classes "
                f"({arch.get('prototypes_per_class', '-')} slots per class)")

    def trainable(self, stage: str) -> set[str]:
        extra = {"proto_presence"} if stage != "last" else set()
        return super().trainable(stage) | extra

    def parameter_groups(self, net: nn.Module, lr: Any) -> dict[str, list[dict[str, Any]]]:
        """ProtoPool's optimisers (its main.py): the slot logits learn with the prototypes,
        warm and joint; its last layer has weight decay."""
        wd = lr.weight_decay
        tail = [{"params": net.add_on_layers.parameters(), "lr": lr.add_on_layers, "weight_decay": wd},
                {"params": [net.proto_presence], "lr": lr.proto_presence},
                {"params": [net.prototype_vectors], "lr": lr.prototype_vectors}]
        groups = {
            "joint": [{"params": net.features.parameters(), "lr": lr.features, "weight_decay": wd},
                      *tail],
            "warm": [{"params": net.add_on_layers.parameters(), "lr": lr.warm_add_on_layers,
                      "weight_decay": wd},
                     {"params": [net.proto_presence], "lr": lr.proto_presence},
                     {"params": [net.prototype_vectors], "lr": lr.warm_prototype_vectors}],
        }
        if net.use_last_layer:
            groups["last"] = [{"params": net.last_layer.parameters(), "lr": lr.last_layer,
                               "weight_decay": wd}]
        return groups

    def before_epoch(self, net: nn.Module, epoch: int, schedule: Any) -> None:
        net.gumbel_scale = gumbel_scale(epoch, schedule.gumbel_epochs)

    def before_last_layer(self, net: nn.Module) -> None:
        net.gumbel_scale = 1e4  # the original's fine-tuning: slots (nearly) one-hot

    def after_last_layer_epoch(self, optimizer: torch.optim.Optimizer, epoch: int) -> None:
        if (epoch + 1) % LAST_LAYER_DECAY_EVERY == 0:
            for group in optimizer.param_groups:
                group["lr"] *= LAST_LAYER_DECAY


__all__ = ["ACTIVATIONS", "PoolNet", "ProtoPoolFamily", "gumbel_scale"]
