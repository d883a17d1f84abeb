"""A model's images streamed in batches, never a whole split in memory.

The runner reads a model's images in batches: once to select its (image,
prototype) pairs (``select_streamed``: ``select_pairs`` on one image batch
at a time, the pairs kept on the CPU), then again for every work unit, the
images of the unit's own pairs (``image_batches``), so an image is decoded
once per configuration (the attack and its control each) that attacks it. A
:class:`~torch.utils.data.DataLoader` does the reading: with ``workers`` > 0
its worker processes decode the next units' images while the current unit
is attacked, and on CUDA the batches come in pinned memory and are copied
asynchronously. ``workers`` = 0 reads in the main process.

The attacks see exactly the images an in-memory run sees, so the numbers do
not depend on ``workers``; a selection batch holds ``batch`` images, and a
suite whose images fit in one batch selects its pairs in one pass, as
``protobench.attack`` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from protobench.attacks import AttackPreset, Pairs, select_pairs
from protobench.attacks.pairs import tensor_fields
from protobench.errors import ProtobenchError


@dataclass
class ImageBatch:
    """Consecutive images of a split: ``images[0]`` is image ``first`` of the split."""

    first: int
    images: torch.Tensor                  # (B, 3, H, W) in [0, 1], on the device
    labels: torch.Tensor                  # (B,) long, on the device
    relevance: list[torch.Tensor | None]  # a mask per image when asked for, else empty


class _Items(Dataset):
    """(image, label, relevance mask or None) of image i of a data set (for the workers)."""

    def __init__(self, data: Dataset, relevance: bool) -> None:
        self.data = data
        self.relevance = relevance

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        x, y = self.data[i]
        masks = getattr(self.data, "relevance_mask", None)  # a user's data set may have none
        return x, y, masks(i) if self.relevance and masks is not None else None


def _collate(items):
    """(images (B, 3, H, W), labels (B,), masks (B, H, W) bool or None, has (B,) bool): the
    masks in one tensor, so that a worker passes one shared-memory handle per batch."""
    images, labels, masks = zip(*items)
    has = torch.tensor([m is not None for m in masks], dtype=torch.bool)
    stacked = None
    if has.any():
        shape = next(m for m in masks if m is not None).shape
        stacked = torch.stack([m.bool() if m is not None else torch.zeros(shape, dtype=torch.bool)
                               for m in masks])
    return torch.stack(images), torch.tensor(labels, dtype=torch.long), stacked, has


def check_workers(workers: object) -> int:
    """``workers`` as an int >= 0 (DataLoader worker processes per rank)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ProtobenchError(f"workers {workers!r} must be an integer >= 0 "
                              "(0 reads the images in the main process)")
    return workers


def image_batches(data: Dataset, batches: Sequence[range], device: torch.device,
                  workers: int = 0, relevance: bool = False) -> Iterator[ImageBatch]:
    """The images of each range of split indices in ``batches``, in order, read ahead by
    ``workers`` processes; with ``relevance`` each image's object mask too."""
    if not all(len(r) for r in batches):  # the caller pairs batches with its units by position
        raise ValueError("image_batches got an empty range")
    if not batches:
        return
    loader = DataLoader(_Items(data, relevance), batch_sampler=[list(r) for r in batches],
                        num_workers=workers, collate_fn=_collate,
                        pin_memory=device.type == "cuda")
    for r, (images, labels, masks, has) in zip(batches, loader):
        relevant = ([] if not relevance else [None] * len(r) if masks is None
                    else [m if h else None for m, h in zip(masks, has.tolist())])
        yield ImageBatch(r.start, images.to(device, non_blocking=True),
                         labels.to(device, non_blocking=True), relevant)


def cut(indices: range, size: int) -> list[range]:
    """``indices`` in consecutive ranges of at most ``size``."""
    return [indices[i:i + size] for i in range(0, len(indices), size)]


def concat_pairs(chunks: Sequence[Pairs]) -> Pairs:
    """The pairs of ``chunks`` in order, as one :class:`Pairs` (one mask rule: same-size images)."""
    if len({c.mask_rule for c in chunks}) > 1:
        raise ValueError(f"pairs of different mask rules: {sorted({str(c.mask_rule) for c in chunks})}")
    return dataclasses.replace(chunks[0], **{name: torch.cat([getattr(c, name) for c in chunks])
                                             for name in tensor_fields()})


def select_streamed(model: torch.nn.Module, data: Dataset, indices: range,
                    presets: Sequence[AttackPreset], batch: int, device: torch.device,
                    workers: int = 0) -> list[Pairs]:
    """Each preset's pairs on the images ``indices`` of ``data``, selected ``batch`` images
    at a time and kept on the CPU; ``image_index`` counts from ``indices.start``."""
    chunks: list[list[Pairs]] = [[] for _ in presets]
    for b in image_batches(data, cut(indices, batch), device, workers, relevance=True):
        for chunk, preset in zip(chunks, presets):
            try:
                pairs = select_pairs(model, b.images, b.labels, b.relevance, preset)
            except ProtobenchError as err:  # its image numbers count from the batch's first
                raise ProtobenchError(f"{err} (images numbered from image {b.first} of the "
                                      "split)") from None
            pairs.image_index = pairs.image_index + (b.first - indices.start)
            chunk.append(pairs.to("cpu"))
    return [concat_pairs(c) for c in chunks]
