"""Import checkpoints of ProtoPool's own code (gmum, ``protopool/main.py``).

It saves ``{"model_state_dict", "epoch"}`` with ``torch.save`` (its ``save_model``),
or the bare state_dict of its ``PrototypeChooser``: plain tensors, read with the
weights-only loader like any protobench checkpoint, whose keys are
:class:`~protobench.model.families.protopool.PoolNet`'s.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from protobench.errors import ProtobenchError
from protobench.model.classifier import IMAGENET_MEAN, IMAGENET_STD, Architecture
from protobench.model.families.protopool.network import ACTIVATIONS
from protobench.model.legacy import warn_assumed, infer_backbone


def is_protopool_state(obj: Any) -> bool:
    """Whether ``obj`` is what ProtoPool's code saves: ``{"model_state_dict", "epoch"}``
    (its ``save_model``) or the bare state_dict of its ``PrototypeChooser``."""
    state = obj.get("model_state_dict", obj) if isinstance(obj, dict) else None
    return isinstance(state, dict) and "proto_presence" in state


def protopool_state(obj: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The state_dict of a ProtoPool checkpoint, without ``alfa``: the original
    creates it with ``--use_thresh`` but its forward never reads it."""
    state = dict(obj.get("model_state_dict", obj))
    state.pop("alfa", None)
    return state


def infer_protopool_architecture(state: dict[str, torch.Tensor], img_size: int | None = None,
                                 activation: str | None = None,
                                 source: str = "the checkpoint") -> Architecture:
    """An :class:`Architecture` (family "protopool") for a checkpoint of ProtoPool's code.

    Its state_dict records neither the image size nor the activation; left
    out, they are ProtoPool's defaults (224, "log"), with a warning.
    """
    for key in ("prototype_vectors", "proto_presence", "add_on_layers.0.weight"):
        if key not in state:
            raise ProtobenchError(f"{source}: not a ProtoPool checkpoint: no {key!r} in it")
    if activation is not None and activation not in ACTIVATIONS:
        raise ProtobenchError(f"activation={activation!r} is not one ProtoPool has; choose one "
                              f"of: {', '.join(ACTIVATIONS)}")
    if any(re.fullmatch(r"add_on_layers\.[1-9]\d*\.weight", k) for k in state):
        raise ProtobenchError(f"{source}: ProtoPool's add-on layers are one 1x1 conv and a Sigmoid; "
                              "this checkpoint has more")
    p, d, ph, pw = state["prototype_vectors"].shape
    num_classes, pool, slots = state["proto_presence"].shape
    if (ph, pw) != (1, 1) or pool != p:
        raise ProtobenchError(f"{source}: prototypes {tuple(state['prototype_vectors'].shape)} and slots "
                              f"{tuple(state['proto_presence'].shape)} do not fit together")
    warn_assumed(source, activation=activation is None, img_size=img_size is None,
                  stacklevel=5)  # the caller of protobench.load
    return Architecture(
        family="protopool", backbone=infer_backbone(state), img_size=img_size or 224,
        num_classes=num_classes, prototypes_per_class=slots, num_prototypes=p, prototype_depth=d,
        prototype_activation_function=activation or "log", add_on_layers_type="linear",
        use_last_layer="last_layer.weight" in state, mean=IMAGENET_MEAN, std=IMAGENET_STD)
