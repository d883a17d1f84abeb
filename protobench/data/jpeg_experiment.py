"""JPEG in the data: Hoffmann et al.'s JPEG experiment and JPEG augmentation.

- :class:`JpegClasses`: the images of chosen classes are JPEG-compressed
  (the paper: the odd classes at quality 20) in whichever split it wraps;
  ``load_dataset(..., jpeg_classes="odd", jpeg_quality=20)`` wraps every
  split alike, as the paper compresses the train, push and test data. A
  model trained on it can learn the artefacts as a class cue.
- :class:`RandomJpeg`: each training image compressed with probability p
  at a quality, anew each epoch (the paper's remedy: p = 0.5, quality 20).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from protobench.data.base import ImageDataset
from protobench.errors import ProtobenchError
from protobench.imaging import check_quality, jpeg_compress


def parse_jpeg_classes(spec: Any, num_classes: int) -> tuple[int, ...]:
    """Class indices from "odd", "even" or a list of indices (each in range)."""
    if spec == "odd":
        return tuple(range(1, num_classes, 2))
    if spec == "even":
        return tuple(range(0, num_classes, 2))
    if isinstance(spec, (list, tuple)) and spec and all(
            isinstance(c, int) and not isinstance(c, bool) for c in spec):
        bad = [c for c in spec if not 0 <= c < num_classes]
        if bad:
            raise ProtobenchError(f"jpeg_classes {bad} do not exist; the data set has classes "
                                  f"0..{num_classes - 1}")
        return tuple(sorted(set(spec)))
    raise ProtobenchError(f"jpeg_classes={spec!r} is invalid; allowed: \"odd\", \"even\" or a "
                          "non-empty list of class indices")


def check_probability(p: Any, name: str) -> float:
    """``p`` as a float in [0, 1], or one error naming it."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ProtobenchError(f"{name}={p!r} is invalid; allowed: a number in [0, 1]")
    return float(p)


def jpeg_augment_settings(table: Any) -> tuple[float, int]:
    """(p, quality) of a recipe's ``jpeg_augment = {p = 0.5, quality = 20}`` table, checked."""
    from protobench.paths import check_keys

    if not isinstance(table, dict):
        raise ProtobenchError(f"jpeg_augment={table!r} is invalid; allowed: a table "
                              "{p = 0.5, quality = 20}")
    check_keys(table, {"p", "quality"}, "jpeg_augment")
    return (check_probability(table.get("p", 0.5), "jpeg_augment p"),
            check_quality(table.get("quality", 20)))


class _Wrapper(ImageDataset):
    """A data set seen through a change of its images; labels and masks unchanged."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset
        self.classes, self.img_size, self.labels = dataset.classes, dataset.img_size, dataset.labels

    def __getattr__(self, name: str) -> Any:  # the wrapped data set's other attributes
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def relevance_mask(self, i: int) -> torch.Tensor | None:
        return self.dataset.relevance_mask(i)

    def part_masks(self, i: int) -> dict[str, torch.Tensor]:
        return self.dataset.part_masks(i)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class JpegClasses(_Wrapper):
    """``dataset`` with the images of ``classes`` JPEG-compressed at ``quality``."""

    def __init__(self, dataset, classes: Sequence[int], quality: int = 20) -> None:
        super().__init__(dataset)
        self.compressed = tuple(int(c) for c in classes)
        self.quality = check_quality(quality)

    def is_compressed(self, i: int) -> bool:
        return int(self.labels[self.index(i)]) in self.compressed

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[i]
        if int(label) in self.compressed:
            image = jpeg_compress(image[None], self.quality)[0]
        return image, label

    def __repr__(self) -> str:
        return f"JpegClasses({self.dataset!r}, classes={list(self.compressed)}, quality={self.quality})"


class RandomJpeg(_Wrapper):
    """``dataset`` with each image compressed at ``quality`` with probability ``p``, anew
    each epoch: image ``i`` in epoch ``e`` draws from the stream ``(seed, e, i)``."""

    def __init__(self, dataset, p: float = 0.5, quality: int = 20, seed: int = 0) -> None:
        super().__init__(dataset)
        self.p = check_probability(p, "JPEG augmentation p")
        self.quality, self.seed, self.epoch = check_quality(quality), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        super().set_epoch(epoch)

    def is_compressed(self, i: int) -> bool:
        rng = np.random.default_rng([self.seed, 7_919, self.epoch, self.index(i)])
        return bool(rng.random() < self.p)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[i]
        if self.is_compressed(i):
            image = jpeg_compress(image[None], self.quality)[0]
        return image, label

    def __repr__(self) -> str:
        return f"RandomJpeg({self.dataset!r}, p={self.p}, quality={self.quality})"
