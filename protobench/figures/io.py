"""Writing figures atomically, so that no half-written PNG is ever left."""

from __future__ import annotations

import io
from pathlib import Path

from protobench.storage import atomic_write


# the widths a paper prints a figure at: one column, and the whole text width
COLUMN_WIDTH, PAGE_WIDTH = 3.3, 7.0
# the palette of the figures of images (panels, local analyses): see save_figure
PHOTO_COLORS = 256


def save_vector_figure(fig, path: str | Path, dpi: int = 150, colors: int = 256) -> list[Path]:
    """Write a plot (lines, points, text) as ``path`` (PNG, with a palette of ``colors``: a
    plot has few colours, so nothing visible is lost and the file is a third of the size) and
    beside it as PDF, the form a paper includes; both or neither (atomically)."""
    from protobench.storage import atomic_write_all

    path = Path(path)
    return atomic_write_all({
        path: lambda tmp: _write_png(fig, tmp, dpi, colors),
        path.with_suffix(".pdf"): lambda tmp: fig.savefig(tmp, bbox_inches="tight", format="pdf"),
    })


def save_figure(fig, path: str | Path, dpi: int = 120, colors: int | None = None) -> Path:
    """Write a matplotlib Figure as a PNG, atomically (figures never go through pyplot,
    so the user's backend and open windows are left alone).

    ``colors``: store the PNG with a palette of that many colours (median cut, no dithering):
    for figures of photographs and similarity maps, about a quarter of the bytes, with no
    difference visible at the figure's size.
    """
    return atomic_write(path, lambda tmp: _write_png(fig, tmp, dpi, colors))


def _write_png(fig, target: Path, dpi: int, colors: int | None) -> None:
    if colors is None:
        fig.savefig(target, dpi=dpi, bbox_inches="tight", format="png")
        return
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, bbox_inches="tight", format="png")
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB")
    image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                   dither=Image.Dither.NONE).save(target, format="png", optimize=True)
