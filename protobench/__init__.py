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
    from protobench.errors import ProtobenchError
    from protobench.model.checkpoint import load_checkpoint
    from protobench.paths import MODELS_DIR

    path = Path(name_or_path)
    is_name = not path.suffix and not path.exists()
    if is_name and (MODELS_DIR / f"{name_or_path}.toml").exists():
        path = MODELS_DIR / f"{name_or_path}.pt"
        if not path.exists():
            raise ProtobenchError(f"model {name_or_path!r} has no trained checkpoint {path}; "
                                  f"train it with: python -m protobench.train --model {name_or_path}")
    elif is_name:
        path = MODELS_DIR / f"{name_or_path}.pt"
    model = load_checkpoint(path, map_location=device, img_size=img_size)
    return model.to(device)


def __getattr__(name: str) -> Any:  # the heavier entry points, imported on first use
    if name == "run":
        from protobench.bench.runner import run
        return run
    raise AttributeError(f"module 'protobench' has no attribute {name!r}")
