"""TesNet (Wang et al., ICCV 2021): the network (network.py) and the family's rules."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from protobench.model.families.base import refuse
from protobench.model.families.protopnet import ProtoPNetFamily
from protobench.model.families.tesnet.network import TesNetwork


class TesNetFamily(ProtoPNetFamily):
    """ProtoPNet's layout and stages; the similarity is the projection onto each class's
    unit basis vectors, renormalised after every optimiser step."""

    name = "tesnet"
    summary = "TesNet (Wang et al. 2021): prototypes as bases of class subspaces"
    network = TesNetwork
    loss = "tesnet"
    has_distances = False  # its "distances" are -projection
    loss_defaults = {"orthogonal": 1e-4}  # TesNet's settings_CUB.py (ProtoPool's is 1)
    legacy_classes = ("TESNet",)
    legacy_activation = "linear"  # recorded so, whatever the original object kept

    def check(self, arch: Any) -> None:
        refuse(arch.prototype_size != 1, "TesNet's basis vectors are 1x1; prototype_size must be 1")
        arch.prototype_activation_function = "linear"
        super().check(arch)

    def after_step(self, net: nn.Module) -> None:
        net.after_step()  # back to unit basis vectors


__all__ = ["TesNetFamily", "TesNetwork"]
