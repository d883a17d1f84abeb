"""protobench: adversarial robustness of prototype-based image classifiers.

The Python API that the command line wraps::

    import protobench
    model = protobench.load("synth-smallcnn")       # a recipe name or a checkpoint path
    report = protobench.attack(model, images, labels, "pgd-local", eps="8/255")
    atk = protobench.LocalPGD(model, eps=8/255); report = atk(images, labels)
    result = protobench.benchmark(attacks=["pgd-local"], models=[model], limit=8)

``attack`` takes any :class:`PrototypeModel` (a foreign model through
:class:`PrototypeAdapter`); ``benchmark`` is the runner of
``python -m protobench.run`` (``protobench.run`` is that command's module).
Names are imported on first use, so ``import protobench`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from protobench._version import __version__


def load(name_or_path: str | Path, device: str = "cpu", img_size: int | None = None,
         activation: str | None = None, family: str | None = None):
    """A trained :class:`~protobench.model.ProtoPNet` in eval mode.

    ``name_or_path`` is a model name (``models/<name>.pt``, trained from
    ``models/<name>.toml``), a protobench checkpoint, or a checkpoint of the
    original ProtoPNet or TesNet code (whole module or state_dict) or of
    ProtoPool's. A state_dict records neither the image size nor the
    prototype activation: give ``img_size`` and ``activation`` ("log" or
    "linear"); left out, they are ProtoPNet's defaults (224, "log") and a
    warning says so. A TesNet state_dict has ProtoPNet's parameter names:
    load it with ``family="tesnet"``.

    ``device``: "cpu", "cuda", "cuda:N" or "auto" (a GPU where there is one),
    resolved as the commands' ``--device`` is (on CUDA, TF32 goes off).
    """
    from protobench.devices import resolve_device
    from protobench.model.checkpoint import load_model

    return load_model(name_or_path, str(resolve_device(str(device))), img_size, activation, family)


# name -> (module, attribute): the heavier entry points, imported on first use
_LAZY = {
    "attack": ("protobench.api", "attack"),
    "AttackReport": ("protobench.api", "AttackReport"),
    "Attack": ("protobench.api", "Attack"),
    "LocalPGD": ("protobench.api", "LocalPGD"),
    "HeadOnStomach": ("protobench.api", "HeadOnStomach"),
    "AutoLocal": ("protobench.api", "AutoLocal"),
    "benchmark": ("protobench.workflows", "benchmark"),
    "PrototypeModel": ("protobench.model.protocol", "PrototypeModel"),
    "PrototypeAdapter": ("protobench.model.protocol", "PrototypeAdapter"),
    "map_objective": ("protobench.attacks.objectives", "map_objective"),
    "load_attack": ("protobench.attacks.presets", "load_attack"),
    "train_model": ("protobench.workflows", "train_model"),
    "snapshot_training": ("protobench.workflows", "snapshot_training"),
    "evaluate_model": ("protobench.workflows", "evaluate_model"),
    "explain_image": ("protobench.workflows", "explain_image"),
    "explain_jpeg": ("protobench.workflows", "explain_jpeg"),
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    if name == "run":  # the command's module, whether or not it was imported before
        return importlib.import_module("protobench.run")
    raise AttributeError(f"module 'protobench' has no attribute {name!r}")


__all__ = ["load", "__version__", *_LAZY]
