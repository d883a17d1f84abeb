"""protobench: adversarial robustness of prototype-based image classifiers.

The Python API that the command line wraps::

    import protobench
    model = protobench.load("synth-smallcnn")      # a recipe name or a checkpoint path
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"


def load(name_or_path: str | Path, device: str = "cpu", img_size: int | None = None):
    """A trained :class:`~protobench.model.ProtoPNet` in eval mode.

    ``name_or_path`` is a model name (``models/<name>.pt``, trained from
    ``models/<name>.toml``), a protobench checkpoint, or a checkpoint of the
    original ProtoPNet code (whole module or state_dict; ``img_size`` for the
    latter, 224 by default).
    """
    from protobench.model.checkpoint import load_checkpoint
    from protobench.paths import model_checkpoint

    path = model_checkpoint(name_or_path)
    model = load_checkpoint(path, map_location=device, img_size=img_size)
    return model.to(device)


def __getattr__(name: str) -> Any:  # the heavier entry points, imported on first use
    if name == "run":
        from protobench.bench.runner import run
        return run
    raise AttributeError(f"module 'protobench' has no attribute {name!r}")
