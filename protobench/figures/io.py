"""Writing figures atomically, so that no half-written PNG is ever left."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from protobench.storage import atomic_write


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight",
                                                          format="png"))
    finally:
        plt.close(fig)
