"""What the attacks, metrics and runner need of a model.

Everything after the model talks to a :class:`PrototypeModel`: protobench's
own :class:`~protobench.model.ProtoPNet` meets it, and any other prototype
model does through :class:`PrototypeAdapter`, which needs only its logits
and a similarity-map function::

    model = PrototypeAdapter(net, similarity_maps=net.prototype_activations,
                             prototype_class=net.prototype_class_identity.argmax(1),
                             img_size=224)
    report = protobench.attack(model, x, y, "pgd-local")
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import torch
import torch.nn as nn

from protobench.errors import ProtobenchError

MEMBERS = ("img_size", "prototype_class", "similarity_maps", "explain")


@runtime_checkable
class PrototypeModel(Protocol):
    """A prototype-based classifier in [0, 1] pixel space.

    img_size          the side of the square images it takes, in pixels
    prototype_class   (P,) long, the class each prototype belongs to
    model(x)          logits (B, C) of images x (B, 3, img_size, img_size) in [0, 1]
    similarity_maps   x -> (B, P, h, w), each prototype's similarity per latent
                      cell (higher is more similar), differentiable in x
    explain           x -> (logits (B, C), min distances (B, P) or None,
                      similarity maps (B, P, h, w)) in one pass
    attack_maps       optional, x -> (B, P, h, w): what the attacks' objectives
                      ascend, a strictly increasing function of the similarity
                      per cell whose gradient does not saturate (PIP-Net: the
                      log-odds of its softmax presence); see :func:`attack_maps`

    It is also a ``torch.nn.Module`` (the attacks put it in eval mode and
    freeze its parameters while they run).
    """

    img_size: int
    prototype_class: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor: ...

    def explain(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]: ...


def attack_maps(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, P, h, w): the maps an attack's objective ascends, the model's ``attack_maps``
    where it has them, else its similarity maps.

    Being strictly increasing in the similarity per cell, they have the same
    peaks and the same order of cells in exact arithmetic; only the search
    differs. Success is still measured on the similarity maps, where float32
    can tie what the attack maps tell apart.
    """
    maps = getattr(model, "attack_maps", None)
    return maps(x) if maps is not None else model.similarity_maps(x)


def attack_maps_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(attack maps (B, P, h, w), logits (B, C)) of x: in one pass where the model offers
    ``attack_maps_and_logits``, else two (:func:`attack_maps`, then ``model(x)``)."""
    both = getattr(model, "attack_maps_and_logits", None)
    return both(x) if both is not None else (attack_maps(model, x), model(x))


def class_relation(model: nn.Module, num_classes: int | None = None) -> torch.Tensor:
    """(P, C) bool: which classes each prototype serves.

    A model whose prototypes are shared between classes (ProtoPool) says so
    with a ``class_relation`` attribute; for any other, prototype j serves
    ``prototype_class[j]`` alone.
    """
    relation = getattr(model, "class_relation", None)
    if relation is not None:
        return relation.bool()
    classes = model.prototype_class.long()
    count = num_classes or int(classes.max()) + 1
    return torch.nn.functional.one_hot(classes.clamp(min=0), count).bool() & (classes >= 0).view(-1, 1)


def check_prototype_model(model: object) -> nn.Module:
    """``model`` if it meets :class:`PrototypeModel`; else one error naming what is missing."""
    missing = [name for name in MEMBERS if not hasattr(model, name)]
    if not isinstance(model, nn.Module):
        missing.insert(0, "torch.nn.Module")
    if missing:
        raise ProtobenchError(
            f"{type(model).__name__} is not a prototype model: it lacks {', '.join(missing)} "
            "(see protobench.PrototypeModel). Wrap a foreign model with "
            "protobench.PrototypeAdapter(model, similarity_maps=..., prototype_class=..., "
            "img_size=...)")
    return model


class PrototypeAdapter(nn.Module):
    """A foreign prototype model seen as a :class:`PrototypeModel`.

    model            the network; ``model(x)`` gives logits unless ``logits``
                     is given. It must take images in [0, 1] (put any
                     normalisation inside, so that eps is in pixel units)
    similarity_maps  x -> (B, P, h, w), the prototypes' similarity per cell
                     (for a distance-based model, e.g. ``-distances`` or its
                     log activation: higher must mean more similar)
    prototype_class  (P,) the class of each prototype
    img_size         the image side in pixels
    logits           optional x -> (B, C), when ``model(x)`` is not the logits
                     (e.g. it returns a tuple)
    """

    def __init__(self, model: nn.Module, similarity_maps: Callable[[torch.Tensor], torch.Tensor],
                 prototype_class: torch.Tensor | list[int], img_size: int,
                 logits: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.model = model
        self._similarity_maps = similarity_maps
        self._logits = logits
        self.register_buffer("prototype_class", torch.as_tensor(prototype_class).long().flatten())
        self.img_size = int(img_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._logits(x) if self._logits is not None else self.model(x)

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        maps = self._similarity_maps(x)
        if maps.dim() != 4 or maps.shape[:2] != (len(x), len(self.prototype_class)):
            raise ProtobenchError(
                f"similarity_maps gave shape {tuple(maps.shape)}; expected (B, P, h, w) with "
                f"B={len(x)} and P={len(self.prototype_class)} (one class per prototype)")
        return maps

    def explain(self, x: torch.Tensor) -> tuple[torch.Tensor, None, torch.Tensor]:
        """Logits, no distances (the adapter does not know them), similarity maps."""
        return self(x), None, self.similarity_maps(x)
