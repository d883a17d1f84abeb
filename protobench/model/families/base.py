"""What a model family is: the network's contract and the family's own rules.

A family (ProtoPNet, ProtoPool, PIP-Net, TesNet, ...) is a folder under
``protobench/model/families/`` with its network and one :class:`Family`
object registered in :mod:`protobench.model.families`. Everything that
differs between families is asked of that object: the architecture's checks
and defaults, how to build the network, which original checkpoints it imports,
which parameters learn in which training stage and at what rate, and the hooks
the training calls between steps and epochs. Nothing outside the family's
folder tests which family a network is.

The network itself works on *normalised* images and meets
:class:`PrototypeNetwork`; :class:`protobench.model.PrototypeClassifier` wraps
it for [0, 1] pixel space.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
import torch.nn as nn

from protobench.errors import ProtobenchError

STAGES = ("warm", "joint", "last")


@runtime_checkable
class PrototypeNetwork(Protocol):
    """The contract every family's network meets (on normalised images).

    features                  the backbone (``out_channels``, ``conv_info()``)
    img_size, num_classes     C
    num_prototypes            P
    prototype_shape           (P, D, ph, pw)
    prototype_class_identity  (P, C) float, 1 where a prototype serves a class
    prototype_class           (P,) long, each prototype's (main) class; -1 for none
    proto_layer_rf_info       [n, jump, rf, start] of the latent cells
    prototype_distances(x)    (B, P, h, w): what push and the min pooling read;
                              a family without latent distances gives a stand-in
                              that decreases as the similarity grows (PIP-Net:
                              1 - presence; TesNet: -projection)
    distance_2_similarity(d)  the similarity of those distances
    forward_from_distances(d) (logits (B, C), min distances (B, P))
    forward(x)                (logits, what the family's loss reads (B, P))
    similarity_maps(x)        (B, P, h, w), each prototype's similarity per cell
    attack_maps(x)            what the attacks ascend: a strictly increasing
                              function of the similarity per cell
    push_forward(x)           (latent patches or presences, distances) for push
    prototype_weights()       (C, P): each prototype's weight in each class's logit
    """

    img_size: int
    num_classes: int
    num_prototypes: int
    prototype_shape: tuple[int, int, int, int]
    proto_layer_rf_info: list[float]
    features: nn.Module

    @property
    def prototype_class_identity(self) -> torch.Tensor: ...

    @property
    def prototype_class(self) -> torch.Tensor: ...

    def prototype_distances(self, x: torch.Tensor) -> torch.Tensor: ...

    def distance_2_similarity(self, distances: torch.Tensor) -> torch.Tensor: ...

    def forward_from_distances(self, distances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor: ...

    def attack_maps(self, x: torch.Tensor) -> torch.Tensor: ...

    def push_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def prototype_weights(self) -> torch.Tensor: ...


class Family:
    """One model family's rules. Subclass it in the family's folder, override what differs,
    and register one instance with :func:`protobench.model.families.register_family`.

    Class attributes:
        name            the architecture's ``family`` value
        summary         one line for ``protobench list`` and the docs
        loss            the training loss, a name in :data:`protobench.training.losses.LOSSES`
        procedure       how it trains, "stages" (ProtoPNet's warm, joint, push and
                        last layer) or one in :data:`protobench.training.trainer.PROCEDURES`
        resumable       whether a stopped training keeps state and goes on from it
        has_distances   whether ``prototype_distances`` are latent distances (the realism
                        report's distance ratio needs them)
        attack_maps_are_similarity  whether ``attack_maps`` are the similarity maps, so
                        one pass gives the logits and what the attacks ascend
        loss_defaults   loss coefficients whose published value is the family's own
        legacy_classes  the original code's pickled network classes this family imports
        legacy_activation  the activation an imported checkpoint of this family has
                        whatever it records (None: the recorded or given one)
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    loss: ClassVar[str] = "protopnet"
    procedure: ClassVar[str] = "stages"
    resumable: ClassVar[bool] = True
    has_distances: ClassVar[bool] = True
    attack_maps_are_similarity: ClassVar[bool] = True
    loss_defaults: ClassVar[dict[str, float]] = {}
    legacy_classes: ClassVar[tuple[str, ...]] = ()
    legacy_activation: ClassVar[str | None] = None

    # ------------------------------------------------------------ architecture
    def check(self, arch: Any) -> None:
        """Refuse an architecture this family cannot build, and fill in its defaults
        (``arch`` is an :class:`~protobench.model.Architecture`, changed in place)."""

    def build(self, arch: Any, features: nn.Module, rf_info: list[float]) -> nn.Module:
        """An untrained network of ``arch`` on ``features``."""
        raise NotImplementedError

    def describe_prototypes(self, arch: dict[str, Any], count: int) -> str:
        """The prototypes in words, for a model card."""
        return f"{count} ({arch.get('prototypes_per_class', '-')} per class)"

    # ------------------------------------------------------------ training
    def trainable(self, stage: str) -> set[str]:
        """The top-level parameter names that learn in ``stage`` ("warm", "joint", "last")."""
        return {"warm": {"add_on_layers", "prototype_vectors", "last_layer"},
                "joint": {"features", "add_on_layers", "prototype_vectors", "last_layer"},
                "last": {"last_layer"}}[stage]

    def parameter_groups(self, net: nn.Module, lr: Any) -> dict[str, list[dict[str, Any]]]:
        """Adam's parameter groups of each stage ("last" only where the family has a
        last-layer stage); ``lr`` is the recipe's :class:`~protobench.training.LearningRates`."""
        raise NotImplementedError

    def before_epoch(self, net: nn.Module, epoch: int, schedule: Any) -> None:
        """Called before warm or joint epoch ``epoch`` (0-based)."""

    def before_last_layer(self, net: nn.Module) -> None:
        """Called after a push, before the last-layer epochs."""

    def after_last_layer_epoch(self, optimizer: torch.optim.Optimizer, epoch: int) -> None:
        """Called after last-layer epoch ``epoch`` (0-based) of a push."""

    def after_step(self, net: nn.Module) -> None:
        """Called after every optimiser step of the stages."""


def refuse(condition: bool, message: str) -> None:
    """A :class:`ProtobenchError` with ``message`` where ``condition`` holds."""
    if condition:
        raise ProtobenchError(message)
