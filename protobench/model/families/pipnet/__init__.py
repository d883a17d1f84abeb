"""PIP-Net (Nauta et al., CVPR 2023): the network (network.py) and the family's rules.
Its training procedure is its own (protobench/training/pipnet.py)."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from protobench.model.families.base import Family, refuse
from protobench.model.families.pipnet.network import INFERENCE_THRESHOLD, NonNegLinear, PIPNetwork


class PIPNetFamily(Family):
    """The backbone's channels (or a 1x1 convolution's) are the prototypes; a softmax over
    them gives each cell's presence. No distances, no push, its own training stages."""

    name = "pipnet"
    summary = "PIP-Net (Nauta et al. 2023): softmax presence of channel prototypes"
    network = PIPNetwork
    loss = "pipnet"
    procedure = "pipnet"
    resumable = False  # its stages keep no state
    has_distances = False  # its "distances" are 1 - presence
    attack_maps_are_similarity = False  # the attacks ascend the presence's log-odds

    def check(self, arch: Any) -> None:
        refuse(arch.num_prototypes < 0, "num_prototypes of a pipnet model must be >= 0 (0: the "
                                        f"backbone's channels), got {arch.num_prototypes!r}")
        if arch.add_on_layers_type == "bottleneck":  # the default: PIP-Net's add-on is a softmax
            arch.add_on_layers_type = "softmax"
        arch.prototype_activation_function = "presence"

    def build(self, arch: Any, features: nn.Module, rf_info: list[float]) -> nn.Module:
        return PIPNetwork(features, arch.img_size, arch.num_prototypes, arch.num_classes, rf_info)

    def describe_prototypes(self, arch: dict[str, Any], count: int) -> str:
        return f"{count} (the backbone's channels)" if not arch.get("num_prototypes") else str(count)


__all__ = ["INFERENCE_THRESHOLD", "NonNegLinear", "PIPNetFamily", "PIPNetwork"]
