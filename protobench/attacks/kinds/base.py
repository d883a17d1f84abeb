"""What an attack kind is: its options, its checks and how it runs.

A preset (attacks/<name>.toml) names a ``kind``; the kind says which of the
preset's keys are its own options (the rest are the threat model, the pairs
and the target, which every kind shares), what values they may take, and how
it perturbs a batch of pairs. Kinds are registered in
:mod:`protobench.attacks.kinds`; the runner, the Python API and the command
line find them there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
import torch.nn as nn

from protobench.errors import ProtobenchError


@dataclass
class AttackResult:
    """The attacked images of N pairs under one setting of a preset.

    attack      the preset's name ("noise" for the control)
    setting     what tells results of one call apart, e.g. {"quality": 50} (jpeg)
    x_adv       (N, 3, H, W) in [0, 1], the attacked image of each pair
    objective   (N,) the score the attack kept x_adv by (masked attacks: the
                success margin, or the objective), else None
    seconds     wall time of the attack
    member      ensembles: (N,) long, which member's image each pair kept
    members     ensembles: each member's own result (with early exit, a member's
                ``attacked`` says which pairs it ran on; the others hold the clean
                image and a score of -inf)
    attacked    ensemble members: (N,) bool, the pairs the member ran on (None: all)
    """

    attack: str
    x_adv: torch.Tensor
    setting: dict[str, Any] = field(default_factory=dict)
    objective: torch.Tensor | None = None
    seconds: float = 0.0
    member: torch.Tensor | None = None
    members: list["AttackResult"] = field(default_factory=list)
    attacked: torch.Tensor | None = None


@dataclass(frozen=True)
class NoOptions:
    """A kind without options of its own."""


class AttackKind:
    """One kind of attack. Subclass it, set the class attributes, override ``check`` and
    ``run``, and register an instance with :func:`protobench.attacks.kinds.register_kind`.

    name          the preset's ``kind`` value
    summary       one line for the docs and ``protobench list``
    Options       a frozen dataclass of the preset keys that are this kind's own; a
                  preset of another kind that sets one of them is refused
    masked        whether it changes the pixels of a mask only and ascends a map
                  objective (the mask, the objective, ``success`` and ``backward`` apply)
    is_control    whether it is the noise control itself (the runner measures the
                  same-budget control beside every other kind that sweeps eps)
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    masked: ClassVar[bool] = False
    is_control: ClassVar[bool] = False

    def options(self, preset: Any) -> Any:
        """This kind's options, read from the preset (its fields, or its ``extra`` options;
        an extra option the preset leaves out takes the dataclass's default)."""
        extra = dict(getattr(preset, "extra", ()))
        values = {f.name: getattr(preset, f.name) if hasattr(preset, f.name) else extra[f.name]
                  for f in fields(self.Options) if hasattr(preset, f.name) or f.name in extra}
        try:
            return self.Options(**values)
        except (TypeError, ValueError) as err:
            raise ProtobenchError(f"the options of attack {preset.name!r} ({self.name}): {err}") from None

    def check(self, preset: Any) -> None:
        """Refuse a preset this kind cannot run (:class:`ProtobenchError` naming the key)."""

    def settings(self, preset: Any) -> list[dict[str, Any]]:
        """The settings one call yields, e.g. one per JPEG quality; most kinds: one, {}."""
        return [{}]

    def sweep(self, preset: Any) -> list[dict[str, Any]] | None:
        """The runner's configurations when the kind sweeps its own settings rather than
        eps and steps: one preset override each (JPEG: one quality each); None: eps x steps."""
        return None

    def has_steps(self, preset: Any) -> bool:
        """Whether the steps mean anything (the runner sweeps them), as for iterative attacks."""
        return True

    def uses_target(self, preset: Any) -> bool:
        """Whether the attack itself (not the metrics) reads the target cells T."""
        return preset.mask == "target"

    def run(self, model: nn.Module, images: torch.Tensor, pairs: Any, preset: Any,
            generator: torch.Generator, rows: Any = None) -> list[AttackResult]:
        """Attack every pair: one :class:`AttackResult` per setting, in order. images
        (B, 3, H, W) in [0, 1], checked; ``pairs`` were selected from them."""
        raise NotImplementedError


def per_image(pairs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(the distinct images of the pairs, each pair's index among them): attacks that act
    on an image once and copy the result to its pairs."""
    return torch.unique(pairs.image_index, return_inverse=True)


def option_names(kind: AttackKind) -> set[str]:
    """The preset keys that are ``kind``'s own options."""
    return {f.name for f in fields(kind.Options)}


def choose(preset: Any, name: str, allowed: tuple[str, ...] | list[str]) -> None:
    """A :class:`ProtobenchError` naming ``name``'s value and the choices, unless it is one."""
    value = getattr(preset, name)
    if value not in allowed:
        raise ProtobenchError(f"unknown {name} {value!r} in attack {preset.name!r}; "
                              f"choose one of: {', '.join(allowed)}")


def refuse(preset: Any, name: str, ok: bool, allowed: str) -> None:
    """A :class:`ProtobenchError` naming ``name``'s value and what is allowed, unless ``ok``."""
    if not ok:
        value = preset.value(name) if hasattr(preset, "value") else getattr(preset, name)
        raise ProtobenchError(f"{name}={value!r} is invalid in attack "
                              f"{preset.name!r}; allowed: {allowed}")
