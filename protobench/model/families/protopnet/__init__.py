"""ProtoPNet (Chen et al., "This Looks Like That", NeurIPS 2019): the network
(network.py) and the family's rules."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from protobench.model.families.base import Family, refuse
from protobench.model.families.protopnet.network import (
    ACTIVATIONS, ADD_ON_TYPES, L2Prototypes, PPNet, l2_distances, make_add_on_layers,
)


class ProtoPNetFamily(Family):
    """P = classes x prototypes_per_class prototypes, one class each; squared L2 distances;
    trained by ProtoPNet's warm, joint, push and last-layer stages."""

    name = "protopnet"
    summary = "ProtoPNet (Chen et al. 2019): L2 prototypes, one class each"
    network = PPNet
    legacy_classes = ("PPNet",)

    def check(self, arch: Any) -> None:
        refuse(arch.add_on_layers_type not in ADD_ON_TYPES,
               f"unknown add_on_layers_type {arch.add_on_layers_type!r}; choose one of: "
               f"{', '.join(ADD_ON_TYPES)}")
        refuse(bool(arch.num_prototypes),
               f"num_prototypes is ProtoPool's pool size; a {self.name} model has "
               "prototypes_per_class prototypes of each class")

    def build(self, arch: Any, features: nn.Module, rf_info: list[float]) -> nn.Module:
        return self.network(features, arch.img_size, arch.prototype_shape, rf_info, arch.num_classes,
                            prototype_activation_function=arch.prototype_activation_function,
                            add_on_layers_type=arch.add_on_layers_type)

    def parameter_groups(self, net: nn.Module, lr: Any) -> dict[str, list[dict[str, Any]]]:
        """The original's three Adam optimisers; "last" only with a last-layer stage (not with
        the 'linear' activation, as in its main.py)."""
        wd = lr.weight_decay
        groups = {
            "joint": [{"params": net.features.parameters(), "lr": lr.features, "weight_decay": wd},
                      {"params": net.add_on_layers.parameters(), "lr": lr.add_on_layers,
                       "weight_decay": wd},
                      {"params": [net.prototype_vectors], "lr": lr.prototype_vectors}],
            "warm": [{"params": net.add_on_layers.parameters(), "lr": lr.warm_add_on_layers,
                      "weight_decay": wd},
                     {"params": [net.prototype_vectors], "lr": lr.warm_prototype_vectors}],
        }
        if net.has_last_layer_stage:
            groups["last"] = [{"params": net.last_layer.parameters(), "lr": lr.last_layer}]
        return groups


__all__ = ["ACTIVATIONS", "ADD_ON_TYPES", "L2Prototypes", "PPNet", "ProtoPNetFamily", "l2_distances",
           "make_add_on_layers"]
