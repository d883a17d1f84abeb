"""Writing figures atomically, so that no half-written PNG is ever left."""

from __future__ import annotations

from pathlib import Path

from protobench.storage import atomic_write


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Write a matplotlib Figure as a PNG, atomically (figures never go through pyplot,
    so the user's backend and open windows are left alone)."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight",
                                                      format="png"))
