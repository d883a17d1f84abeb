"""The interface every protobench data set shares.

A data set is a :class:`torch.utils.data.Dataset` of ``(image, label)``
pairs, ``image`` a float32 tensor (3, H, W) in [0, 1], ``label`` an int, so
that a ``DataLoader`` with the default collate batches it. Beside the pairs
it tells where the object is, which is what makes "the prototype moved to an
irrelevant region" a measured fact:

- ``relevance_mask(i)``: bool (H, W), True on the object (None when unknown);
- ``part_masks(i)``: ``{part name: bool (H, W)}`` (empty when unknown).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from protobench.errors import ProtobenchError

# "push" is the un-augmented training set that ProtoPNet projects prototypes onto.
SPLITS = ("train", "push", "test")


def check_split(split: str, allowed: tuple[str, ...] = SPLITS) -> str:
    """``split`` itself, or a :class:`ProtobenchError` listing the allowed ones."""
    if split not in allowed:
        raise ProtobenchError(f"unknown split {split!r}; choose one of: {', '.join(allowed)}")
    return split


def check_img_size(img_size: object) -> int:
    """``img_size`` as an int of at least 8 pixels (a side length)."""
    if isinstance(img_size, bool) or not isinstance(img_size, (int, np.integer)) or img_size < 8:
        raise ProtobenchError(f"img_size must be an integer >= 8 (pixels), got {img_size!r}")
    return int(img_size)


def to_image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float32 (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)


class ImageDataset(Dataset):
    """Base class: ``classes``, ``img_size``, ``labels`` and the mask methods.

    Subclasses set ``classes`` (list[str]), ``img_size`` (int) and ``labels``
    (LongTensor (N,)) and implement ``__getitem__``; they override the mask
    methods when they know where the object is.
    """

    classes: list[str]
    img_size: int
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, i: int) -> int:
        """``i`` as a non-negative index; IndexError past the end (ends for-loops)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a data set of {n} images")
        return int(i) % n

    def relevance_mask(self, i: int) -> torch.Tensor | None:
        """bool (H, W), True on the object of image ``i``; None when unknown."""
        self.index(i)
        return None

    def part_masks(self, i: int) -> dict[str, torch.Tensor]:
        """``{part: bool (H, W)}`` of image ``i``; empty when parts are unknown."""
        self.index(i)
        return {}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self)} images, {len(self.classes)} classes, "
                f"{self.img_size} px)")
