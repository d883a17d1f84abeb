"""The attack kinds, one module each, and their registry.

    masked-pgd   PGD or APGD on a map objective inside each pair's mask
    ensemble     masked attacks of one threat model, per pair the worst case
    whole-image  PGD, FGSM or APGD on the cross-entropy over every pixel
    jpeg         JPEG compression at each quality
    noise        uniform noise in the mask (the control)

A new kind is a module with an :class:`AttackKind` subclass, registered at the
bottom of this file (docs/design.md, "Adding an attack kind").
"""

from __future__ import annotations

from typing import Iterable

from protobench.attacks.kinds.base import AttackKind, AttackResult, option_names
from protobench.registry import add_named, get_named

ATTACK_KINDS: dict[str, AttackKind] = {}


def register_kind(kind: AttackKind) -> AttackKind:
    """Add ``kind`` under its name; a name registered twice is an error."""
    return add_named(ATTACK_KINDS, kind, "attack kind")


def get_kind(name: str) -> AttackKind:
    """The kind registered as ``name``; an unknown name is a :class:`ProtobenchError`."""
    return get_named(ATTACK_KINDS, name, "kind")


def foreign_options(kind: str, keys: Iterable[str]) -> dict[str, list[str]]:
    """Of ``keys``, those that are options of other kinds only: key -> the kinds it serves."""
    own = option_names(get_kind(kind))
    out: dict[str, list[str]] = {}
    for key in keys:
        owners = [k.name for k in ATTACK_KINDS.values() if key in option_names(k)]
        if owners and key not in own:
            out[key] = owners
    return out


from protobench.attacks.kinds.masked_pgd import MaskedPGDKind  # noqa: E402
from protobench.attacks.kinds.ensemble import EnsembleKind  # noqa: E402
from protobench.attacks.kinds.whole_image import WholeImageKind  # noqa: E402
from protobench.attacks.kinds.jpeg import JpegKind  # noqa: E402
from protobench.attacks.kinds.noise import NoiseKind  # noqa: E402

for _kind in (MaskedPGDKind(), EnsembleKind(), WholeImageKind(), JpegKind(), NoiseKind()):
    register_kind(_kind)

__all__ = ["ATTACK_KINDS", "AttackKind", "AttackResult", "foreign_options", "get_kind",
           "register_kind"]
