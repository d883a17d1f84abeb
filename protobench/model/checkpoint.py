"""Saving and loading checkpoints.

A protobench checkpoint is ``{"format", "version", "meta", "state_dict"}``,
written with ``torch.save`` and read back with torch's weights-only loader,
so loading never unpickles arbitrary objects. ``meta`` holds only plain
Python values (see :class:`ModelMeta`). Checkpoints of the original ProtoPNet
code and of ProtoPool's are recognised and imported through
:mod:`protobench.model.legacy`.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from protobench.errors import ProtobenchError
from protobench.model import legacy
from protobench.model.families.protopool import legacy as protopool_legacy
from protobench.model.classifier import ModelMeta, PrototypeClassifier
from protobench.storage import atomic_write

FORMAT = "protobench-checkpoint"
VERSION = 1


def save_checkpoint(model: PrototypeClassifier, path: str | Path) -> Path:
    """Write ``model`` to ``path`` atomically (a temporary file, then a rename)."""
    payload = {"format": FORMAT, "version": VERSION, "meta": model.meta.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.net.state_dict().items()}}

    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _check_torch_file(path: Path) -> None:
    """A clear error for a file that torch.save cannot have written: empty, text (a recipe?),
    truncated or of another format. torch.save writes a zip archive (a pickle before 1.6)."""
    path = Path(path)
    if path.is_dir():
        raise ProtobenchError(f"{path} is a folder, not a checkpoint file")
    with open(path, "rb") as f:
        head = f.read(1)
    if zipfile.is_zipfile(path) or head == b"\x80":  # a zip archive, or a pickle (protocol >= 2)
        return
    what = ("it is empty" if not head else
            "it is a model recipe (TOML); train it first: python -m protobench.train --recipe "
            f"{path}" if path.suffix == ".toml" else
            "it is neither a zip archive nor a pickle, as torch.save writes (a truncated copy, "
            "or another format)")
    raise ProtobenchError(f"{path}: not a PyTorch checkpoint: {what}")


def _read(path: Path, map_location: Any) -> Any:
    """torch.load with weights only; None when it names classes outside the safe set."""
    _check_torch_file(path)
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol warnings say nothing to a user
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err) or "global" in str(err):
            return None  # maybe a whole pickled module of the original code
        raise ProtobenchError(f"{path}: not a checkpoint protobench can read safely "
                              f"({_first_line(err)})") from None
    except (RuntimeError, EOFError, ValueError, OSError, IndexError, KeyError, TypeError,
            AttributeError, zipfile.BadZipFile) as err:
        raise ProtobenchError(f"{path}: not a checkpoint protobench can read safely "
                              f"({_first_line(err)})") from None


def _first_line(err: Exception) -> str:
    """The reason, in one line; never torch's advice to load with weights_only=False."""
    text = str(err).strip()
    if "weights_only" in text or "Weights only" in text:
        return "it holds Python objects that a weights-only load refuses; protobench does not run them"
    return (text.splitlines() or [type(err).__name__])[0][:200]


def load_model(name_or_path: str | Path, device: str = "cpu", img_size: int | None = None,
               activation: str | None = None, family: str | None = None) -> PrototypeClassifier:
    """``protobench.load``: a model name (models/<name>.pt) or a checkpoint path, on ``device``."""
    from protobench.paths import model_checkpoint

    path = model_checkpoint(name_or_path)
    return load_checkpoint(path, map_location=device, img_size=img_size,
                           activation=activation, family=family).to(device)


def load_checkpoint(path: str | Path, map_location: Any = "cpu",
                    img_size: int | None = None, activation: str | None = None,
                    family: str | None = None) -> PrototypeClassifier:
    """A ready :class:`PrototypeClassifier` (eval mode) from a protobench or original checkpoint.

    ``img_size`` and ``activation`` ("log" or "linear") are needed only for
    an original state_dict, which records neither; left out, they are
    ProtoPNet's defaults (224, "log"), with a ``LegacyAssumptionWarning``.
    ``family`` ("protopnet" or "tesnet") says which an original state_dict
    is, as TesNet's has ProtoPNet's parameter names (default "protopnet");
    for any other checkpoint it is checked against the family it records.
    """
    path = Path(path)
    if family is not None and family not in legacy.PROTOPNET_LAYOUT:
        raise ProtobenchError(f"family {family!r} cannot be given to an import; choose one of: "
                              f"{', '.join(legacy.PROTOPNET_LAYOUT)} (other families are recorded "
                              "in their checkpoints)")
    if not path.is_file():
        raise ProtobenchError(f"checkpoint {path} does not exist")
    obj = _read(path, map_location)
    if obj is None:
        state, attrs, recorded = legacy.load_whole_module(str(path), map_location)
        return _from_legacy(path, state, attrs, img_size, activation, _agreed(path, recorded, family))
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        meta = ModelMeta.from_dict(obj["meta"])
        _agreed(path, meta.architecture.family, family)
        model = PrototypeClassifier.build(meta.architecture, meta.classes)
        model.meta = meta
        _load_state(model, obj["state_dict"], path)
        return model.eval()
    if protopool_legacy.is_protopool_state(obj):
        _agreed(path, "protopool", family)
        arch = protopool_legacy.infer_protopool_architecture(obj.get("model_state_dict", obj), img_size,
                                                   activation, source=str(path))
        model = PrototypeClassifier.build(arch, name=path.stem, recipe={"imported_from": str(path)})
        _load_state(model, protopool_legacy.protopool_state(obj), path)
        return model.eval()
    if isinstance(obj, dict) and "prototype_vectors" in obj:
        return _from_legacy(path, obj, {}, img_size, activation, family or "protopnet")
    raise ProtobenchError(f"{path}: not a protobench, ProtoPNet, TesNet or ProtoPool checkpoint")


def _agreed(path: Path, recorded: str, asked: str | None) -> str:
    """The family a checkpoint records, refusing a caller who said another."""
    if asked is not None and asked != recorded:
        raise ProtobenchError(f"{path} is a {recorded} checkpoint, not {asked}; leave the family out")
    return recorded


def _from_legacy(path: Path, state: dict[str, torch.Tensor], attrs: dict[str, Any],
                 img_size: int | None, activation: str | None, family: str) -> PrototypeClassifier:
    arch = legacy.infer_architecture(state, attrs, img_size, activation, source=str(path),
                                     family=family)
    model = PrototypeClassifier.build(arch, name=path.stem, recipe={"imported_from": str(path)})
    state = dict(state)
    identity = attrs.get("prototype_class_identity")
    if "prototype_class_identity" not in state:
        state["prototype_class_identity"] = (identity if isinstance(identity, torch.Tensor)
                                             else model.net.prototype_class_identity)
    _load_state(model, state, path)
    return model.eval()


def _load_state(model: PrototypeClassifier, state: dict[str, torch.Tensor], path: Path) -> None:
    own = model.net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("wrong shape: " + ", ".join(wrong[:3]))
        if missing:
            parts.append("missing: " + ", ".join(missing[:3]))
        if unexpected:
            parts.append("unexpected: " + ", ".join(unexpected[:3]))
        raise ProtobenchError(f"{path}: checkpoint does not fit its architecture ({'; '.join(parts)})")
    model.net.load_state_dict(state)
