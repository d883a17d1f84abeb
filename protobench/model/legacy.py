"""Import checkpoints written by the original ProtoPNet code, by TesNet's, and by ProtoPool's.

The original saves either a whole pickled ``PPNet`` module (``torch.save(ppnet)``)
or its ``state_dict``. TesNet's code (JackeyWang96/TesNet, ``util/save.py``)
saves a whole pickled ``TESNet`` module the same way; its parameters have
ProtoPNet's names, so its state_dict cannot be told from a ProtoPNet's, and
only the pickled class (or the caller's ``family="tesnet"``) says which it is. Unpickling a whole module normally runs whatever the
pickle names, so here it goes through torch's weights-only unpickler with an
allow-list: the original's own classes are replaced by inert stand-ins that
only record their attributes, a few torch layers are admitted as they are, and
any other global (``os.system``, say) is refused before anything runs.

From the recorded attributes and the state_dict we infer the backbone
(resnet, vgg or densenet of any depth), build a protobench ``PPNet`` whose
parameter names are the original's, and load the weights key for key, so the
outputs are identical.

ProtoPool's code (gmum, ``protopool/main.py``) saves ``{"model_state_dict",
"epoch"}`` with ``torch.save``; that is plain tensors, read with the
weights-only loader like any protobench checkpoint.
"""

from __future__ import annotations

import pickle
import re
from collections import OrderedDict
from typing import Any

import torch
import torch.nn as nn

from protobench.errors import ProtobenchError, UntrustedCheckpointError
from protobench.model.classifier import IMAGENET_MEAN, IMAGENET_STD, Architecture
from protobench.model.families import FAMILIES, get_family

# Classes of the original code bases, by module -> names: ProtoPNet keeps its backbones
# in top-level modules, TesNet in a ``models`` package; both networks live in ``model``.
_FEATURE_CLASSES = {
    "resnet_features": ["ResNet_features", "BasicBlock", "Bottleneck"],
    "vgg_features": ["VGG_features"],
    "densenet_features": ["DenseNet_features", "_DenseBlock", "_DenseLayer", "_Transition"],
}
LEGACY_CLASSES = {
    "model": ["PPNet", "TESNet"],
    **_FEATURE_CLASSES,
    **{f"models.{module}": names for module, names in _FEATURE_CLASSES.items()},
}
# the protobench family of each original network class (each family names its own)
NETWORK_FAMILIES = {cls: f.name for f in FAMILIES.values() for cls in f.legacy_classes}
# the families whose original checkpoints have ProtoPNet's layout
PROTOPNET_LAYOUT = tuple(dict.fromkeys(NETWORK_FAMILIES.values()))
# torch layers that the original modules contain; admitted as real classes.
TORCH_LAYERS = [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Sequential,
                nn.Linear, nn.Sigmoid, nn.Dropout, nn.Identity, nn.AdaptiveAvgPool2d]


class LegacyObject:
    """Inert stand-in for a class of the original code: it only keeps its state."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state


def _stand_ins() -> list[type]:
    classes = []
    for module, names in LEGACY_CLASSES.items():
        for name in names:
            classes.append(type(name, (LegacyObject,), {"__module__": module, "__qualname__": name}))
    return classes


def load_whole_module(path: str, map_location: Any = "cpu"
                      ) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """Unpickle an original whole-module checkpoint without running its code.

    Returns (state_dict, attributes of the network object, its family:
    "protopnet" for a ``PPNet``, "tesnet" for a ``TESNet``).
    """
    try:
        with torch.serialization.safe_globals(_stand_ins() + TORCH_LAYERS):
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        name = found.group(1) if found else "an object outside the allow-list"
        raise UntrustedCheckpointError(
            f"{path}: refused to load, the checkpoint names {name}, which is not an "
            "allowed class of ProtoPNet, TesNet or torch; nothing in it was run") from None
    if type(obj).__name__ not in NETWORK_FAMILIES or not isinstance(obj, LegacyObject):
        raise ProtobenchError(f"{path}: not a ProtoPNet or TesNet checkpoint (found {type(obj).__name__})")
    attrs = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return module_state_dict(obj), attrs, NETWORK_FAMILIES[type(obj).__name__]


def module_state_dict(obj: Any, prefix: str = "") -> "OrderedDict[str, torch.Tensor]":
    """The state_dict of an unpickled module tree, real or stand-in."""
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    d = vars(obj)
    skip = d.get("_non_persistent_buffers_set", set())
    for name, p in d.get("_parameters", {}).items():
        if p is not None:
            state[prefix + name] = p.detach() if isinstance(p, torch.Tensor) else p
    for name, b in d.get("_buffers", {}).items():
        if b is not None and name not in skip:
            state[prefix + name] = b
    for name, child in d.get("_modules", {}).items():
        if child is not None:
            state.update(module_state_dict(child, f"{prefix}{name}."))
    return state


# ------------------------------------------------------ architecture inference
_RESNETS = {((2, 2, 2, 2), False): "resnet18", ((3, 4, 6, 3), False): "resnet34",
            ((3, 4, 6, 3), True): "resnet50", ((3, 4, 23, 3), True): "resnet101",
            ((3, 8, 36, 3), True): "resnet152"}
_VGGS = {8: "vgg11", 10: "vgg13", 13: "vgg16", 16: "vgg19"}
_DENSENETS = {(6, 12, 24, 16): "densenet121", (6, 12, 32, 32): "densenet169",
              (6, 12, 48, 32): "densenet201", (6, 12, 36, 24): "densenet161"}


def infer_backbone(state: dict[str, torch.Tensor]) -> str:
    """The torchvision backbone name that produced ``features.*`` keys."""
    keys = list(state)
    if "features.conv1.weight" in keys:
        blocks = tuple(len({k.split(".")[2] for k in keys if k.startswith(f"features.layer{i}.")})
                       for i in range(1, 5))
        bottleneck = any(".conv3." in k for k in keys)
        name = _RESNETS.get((blocks, bottleneck))
    elif "features.features.conv0.weight" in keys:
        blocks = tuple(len({k.split(".")[3] for k in keys
                            if k.startswith(f"features.features.denseblock{i}.")}) for i in range(1, 5))
        name = _DENSENETS.get(blocks)
    elif "features.features.0.weight" in keys:
        convs = [k for k in keys if re.fullmatch(r"features\.features\.\d+\.weight", k)
                 and state[k].dim() == 4]
        bn = any(re.fullmatch(r"features\.features\.\d+\.running_mean", k) for k in keys)
        name = _VGGS.get(len(convs))
        name = name and name + ("_bn" if bn else "")
    else:
        name = None
    if name is None:
        raise ProtobenchError("not a ProtoPNet checkpoint of a resnet, vgg or densenet backbone: "
                              "its feature layers match none of them")
    return name


class LegacyAssumptionWarning(UserWarning):
    """An original state_dict did not record a field; the import assumed ProtoPNet's default."""


ACTIVATIONS = ("log", "linear")


def warn_assumed(source: str, activation: bool, img_size: bool, stacklevel: int) -> None:
    """One :class:`LegacyAssumptionWarning` naming the defaults a checkpoint left to us."""
    assumed = []
    if activation:
        assumed.append("prototype activation 'log' (activation='linear', --activation linear, "
                       "if it was trained with 'linear')")
    if img_size:
        assumed.append("image size 224 (img_size=..., --img-size)")
    if assumed:
        import warnings
        warnings.warn(f"{source} does not record every field of the model; assumed "
                      f"{'; '.join(assumed)}", LegacyAssumptionWarning, stacklevel=stacklevel)


def infer_architecture(state: dict[str, torch.Tensor], attrs: dict[str, Any],
                       img_size: int | None = None, activation: str | None = None,
                       source: str = "the checkpoint", family: str = "protopnet") -> Architecture:
    """An :class:`Architecture` for an original ProtoPNet or TesNet checkpoint.

    A whole module records its image size and prototype activation function;
    a state_dict records neither. ``img_size`` and ``activation`` give them;
    a field left unsaid is ProtoPNet's default (224, "log"), announced once
    with a :class:`LegacyAssumptionWarning`, since a linear-activation model
    read as "log" gives other logits without any other sign. A TesNet
    (``family="tesnet"``) has no activation: its similarity is the projection.
    """
    for key in ("prototype_vectors", "last_layer.weight"):
        if key not in state:
            raise ProtobenchError(f"not a ProtoPNet or TesNet checkpoint: no {key!r} in it")
    p, d, ph, pw = state["prototype_vectors"].shape
    num_classes = state["last_layer.weight"].shape[0]
    if family not in PROTOPNET_LAYOUT:
        raise ProtobenchError(f"family {family!r} has no original checkpoint with ProtoPNet's "
                              f"layout; choose one of: {', '.join(PROTOPNET_LAYOUT)}")
    fixed = get_family(family).legacy_activation
    if fixed is not None:  # TesNet: the similarity is the projection, whatever TESNet kept
        if activation is not None:
            raise ProtobenchError(f"a {family} model has no prototype activation to choose (it is "
                                  f"{fixed!r}); leave the activation out")
        activation = fixed
        attrs = {k: v for k, v in attrs.items() if k != "prototype_activation_function"}
    if activation is not None and activation not in ACTIVATIONS:
        raise ProtobenchError(f"activation={activation!r} is not one ProtoPNet has; choose one "
                              f"of: {', '.join(ACTIVATIONS)}")
    recorded = attrs.get("prototype_activation_function")
    if recorded is not None and not isinstance(recorded, str):
        raise ProtobenchError("the checkpoint uses a custom prototype activation function; "
                              "only 'log' and 'linear' can be imported")
    if recorded is not None and activation is not None and recorded != activation:
        raise ProtobenchError(f"{source} records prototype activation {recorded!r}, "
                              f"not {activation!r}; leave the activation out")
    warn_assumed(source, activation=recorded is None and activation is None,
                  img_size=img_size is None and "img_size" not in attrs,
                  stacklevel=6)  # the caller of protobench.load
    activation = recorded or activation or "log"
    n_add_on_convs = sum(1 for k in state if re.fullmatch(r"add_on_layers\.\d+\.weight", k))
    if ph != pw:
        raise ProtobenchError(f"non-square prototypes ({ph}x{pw}) cannot be imported")
    if p % num_classes:
        raise ProtobenchError(f"{p} prototypes cannot be split among {num_classes} classes")
    return Architecture(
        family=family, backbone=infer_backbone(state),
        img_size=img_size or int(attrs.get("img_size", 224)),
        num_classes=num_classes, prototypes_per_class=p // num_classes, prototype_depth=d,
        prototype_size=ph, prototype_activation_function=activation,
        add_on_layers_type="regular" if n_add_on_convs == 2 else "bottleneck",
        mean=IMAGENET_MEAN, std=IMAGENET_STD)
