"""Writing figures atomically, so that no half-written PNG is ever left."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from protobench.errors import ProtobenchError


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    except OSError as err:
        raise ProtobenchError(f"cannot write figure {path}: {err.strerror}") from None
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(fig)
    return path
