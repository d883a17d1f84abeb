"""The model families, one folder each, and their registry.

    protopnet   ProtoPNet (Chen et al. 2019)
    protopool   ProtoPool (Rymarczyk et al. 2022): a pool of prototypes shared by slots
    pipnet      PIP-Net (Nauta et al. 2023): the backbone's channels are the prototypes
    tesnet      TesNet (Wang et al. 2021): prototypes as bases of class subspaces

A new family is a folder with its network and a :class:`Family` subclass,
registered at the bottom of this file (docs/design.md, "Adding a model family").
"""

from __future__ import annotations

from protobench.registry import add_named, get_named
from protobench.model.families.base import STAGES, Family, PrototypeNetwork

FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add ``family`` under its name; a name registered twice is an error."""
    return add_named(FAMILIES, family, "model family")


def get_family(name: str) -> Family:
    """The family registered as ``name``; an unknown name is a :class:`ProtobenchError`."""
    return get_named(FAMILIES, name, "model family")


from protobench.model.families.protopnet import ProtoPNetFamily  # noqa: E402
from protobench.model.families.protopool import ProtoPoolFamily  # noqa: E402
from protobench.model.families.pipnet import PIPNetFamily  # noqa: E402
from protobench.model.families.tesnet import TesNetFamily  # noqa: E402

for _family in (ProtoPNetFamily(), ProtoPoolFamily(), PIPNetFamily(), TesNetFamily()):
    register_family(_family)

__all__ = ["FAMILIES", "STAGES", "Family", "PrototypeNetwork", "get_family", "register_family"]
