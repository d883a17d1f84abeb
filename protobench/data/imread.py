"""Reading image files from disk: decode, check, resize.

Shared by the folder-backed data sets (``cub200``, ``folder``). A file that
cannot be decoded is not fatal: the data set skips it, lists it in
``dataset.skipped`` and warns once with the count.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` has an image file extension (case-insensitive)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def read_rgb(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """uint8 (H, W, 3) RGB of ``path``, or None when it cannot be decoded.

    Grey images come back as three equal channels. Read through
    ``np.fromfile`` so that non-ASCII paths work as well.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    bgr = cv2.imdecode(data, flags)
    if bgr is None or bgr.ndim != 3 or bgr.shape[0] == 0 or bgr.shape[1] == 0:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_grey(path: Path) -> np.ndarray | None:
    """uint8 (H, W) of a grey image (e.g. a segmentation), or None."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    grey = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    return grey if grey is not None and grey.size else None


def can_decode(path: Path) -> bool:
    """Whether ``path`` decodes; JPEGs at 1/8 scale, which is several times faster."""
    return read_rgb(path, cv2.IMREAD_REDUCED_COLOR_8) is not None


def split_decodable(paths: Sequence[Path], what: str) -> tuple[list[bool], list[Path]]:
    """(``ok[i]`` per path, the undecodable paths), warning once if any.

    Decoding runs in threads (OpenCV releases the GIL while it decodes).
    ``what`` names the data set in the warning.
    """
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ok = list(pool.map(can_decode, paths, chunksize=64))
    skipped = [p for p, good in zip(paths, ok) if not good]
    if skipped:
        warnings.warn(f"{what}: skipped {len(skipped)} image(s) that cannot be decoded, "
                      f"e.g. {skipped[0]} (see dataset.skipped)", stacklevel=3)
    return ok, skipped


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (H, W, ...) resized to (size, size, ...), aspect not kept (as ProtoPNet).

    Area averaging when shrinking (anti-aliased, like torchvision's Resize),
    bilinear when enlarging.
    """
    h, w = image.shape[:2]
    interpolation = cv2.INTER_AREA if size < h or size < w else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)
