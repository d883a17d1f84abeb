"""``cub200``: CUB-200-2011 from a local folder in its published layout.

    <root>/images.txt                 <image_id> <relative path>
    <root>/image_class_labels.txt     <image_id> <class_id>
    <root>/train_test_split.txt       <image_id> <is_training_image>
    <root>/bounding_boxes.txt         <image_id> <x> <y> <width> <height>
    <root>/classes.txt                <class_id> <class_name>
    <root>/parts/part_locs.txt        <image_id> <part_id> <x> <y> <visible>
    <root>/parts/parts.txt            <part_id> <part_name>          (optional)
    <root>/images/<class_dir>/<name>.jpg
    <root>/segmentations/<class_dir>/<name>.png                      (optional)

``root`` may also be the folder that holds ``CUB_200_2011/``. Ids are
1-based; labels are ``class_id - 1``.

Two views, as in the literature:

- ``crop=True`` (ProtoPNet): each image is cropped to its bounding box and
  resized; the relevant region is the whole crop, or the segmentation inside
  it when segmentations are present.
- ``crop=False``: the full image, resized; the relevant region is the
  bounding box, or the segmentation when present.

Images are decoded when read; at construction each one is test-decoded (at
1/8 scale) so that undecodable files are skipped and listed in ``skipped``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import cv2
import numpy as np
import torch

from protobench.data.base import ImageDataset, check_img_size, check_split, to_image_tensor
from protobench.data.imread import read_grey, read_rgb, resize_square, split_decodable
from protobench.errors import ProtobenchError

SPLIT_IS_TRAINING = {"train": 1, "push": 1, "test": 0}
SEGMENTATION_THRESHOLD = 127  # CUB masks average 5 annotators (0, 51, ..., 255): keep a majority
REQUIRED_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt",
                  "bounding_boxes.txt", "classes.txt", "parts/part_locs.txt")


def find_root(root: Path) -> Path:
    """The folder holding images.txt: ``root`` or ``root/CUB_200_2011``."""
    root = Path(root)
    if not root.is_dir():
        raise ProtobenchError(f"CUB-200-2011 folder {root} does not exist")
    if not (root / "images.txt").exists() and (root / "CUB_200_2011" / "images.txt").exists():
        return root / "CUB_200_2011"
    return root


def read_table(path: Path, columns: Sequence[tuple[str, Callable[[str], object]]],
               rest_as_text: bool = False) -> list[tuple]:
    """Rows of a whitespace-separated CUB text file, converted by ``columns``.

    ``rest_as_text``: the last column takes the rest of the line (names with
    spaces). A missing file or a malformed line raises a ProtobenchError that
    names the file and the line.
    """
    if not path.is_file():
        raise ProtobenchError(f"CUB-200-2011 file missing: {path}")
    expected = " ".join(f"<{name}>" for name, _ in columns)
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.split(maxsplit=len(columns) - 1) if rest_as_text else line.split()
            try:
                if len(fields) != len(columns):
                    raise ValueError
                rows.append(tuple(convert(text) for (_, convert), text in zip(columns, fields)))
            except ValueError:
                raise ProtobenchError(f"{path}, line {number}: expected '{expected}', "
                                      f"got {line.strip()!r}") from None
    if not rows:
        raise ProtobenchError(f"CUB-200-2011 file is empty: {path}")
    return rows


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise ValueError
    return value


def _flag(text: str) -> int:
    value = int(text)
    if value not in (0, 1):
        raise ValueError
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError
    return value


@dataclass(frozen=True)
class CubRecord:
    """One image of the annotation files (pixel coordinates of the original image)."""

    image_id: int
    path: Path
    label: int
    is_training: int
    box: tuple[float, float, float, float]  # x, y, width, height
    parts: tuple[tuple[int, float, float], ...]  # visible parts: (part_id, x, y)


def read_annotations(root: Path) -> tuple[list[CubRecord], list[str], dict[int, str]]:
    """(records in images.txt order, class names, part names by id) of a CUB folder."""
    images = read_table(root / "images.txt", [("image_id", int), ("path", str)], rest_as_text=True)
    labels = dict(read_table(root / "image_class_labels.txt", [("image_id", int), ("class_id", int)]))
    splits = dict(read_table(root / "train_test_split.txt",
                             [("image_id", int), ("is_training_image", _flag)]))
    boxes = {r[0]: r[1:] for r in read_table(root / "bounding_boxes.txt", [
        ("image_id", int), ("x", _finite), ("y", _finite), ("width", _positive), ("height", _positive)])}
    class_rows = read_table(root / "classes.txt", [("class_id", int), ("class_name", str)],
                            rest_as_text=True)
    part_rows = read_table(root / "parts" / "part_locs.txt", [
        ("image_id", int), ("part_id", int), ("x", _finite), ("y", _finite), ("visible", _flag)])

    class_ids = [c for c, _ in class_rows]
    if class_ids != list(range(1, len(class_ids) + 1)):
        raise ProtobenchError(f"{root / 'classes.txt'}: class ids must be 1, 2, ..., "
                              f"{len(class_ids)} in order, got {class_ids[:5]}...")
    classes = [name.strip() for _, name in class_rows]

    part_names = {}
    if (root / "parts" / "parts.txt").is_file():
        part_names = {i: name.strip() for i, name in read_table(
            root / "parts" / "parts.txt", [("part_id", int), ("part_name", str)], rest_as_text=True)}
    visible: dict[int, list[tuple[int, float, float]]] = {}
    for image_id, part_id, x, y, is_visible in part_rows:
        part_names.setdefault(part_id, f"part_{part_id}")
        if is_visible:
            visible.setdefault(image_id, []).append((part_id, x, y))

    records = []
    for image_id, rel_path in images:
        for table, name in ((labels, "image_class_labels.txt"), (splits, "train_test_split.txt"),
                            (boxes, "bounding_boxes.txt")):
            if image_id not in table:
                raise ProtobenchError(f"{root / name} has no line for image id {image_id} "
                                      f"(listed in {root / 'images.txt'})")
        if not 1 <= labels[image_id] <= len(classes):
            raise ProtobenchError(f"{root / 'image_class_labels.txt'}: image {image_id} has class id "
                                  f"{labels[image_id]}, not in classes.txt (1..{len(classes)})")
        records.append(CubRecord(image_id, Path(rel_path.strip()), labels[image_id] - 1,
                                 splits[image_id], boxes[image_id],
                                 tuple(visible.get(image_id, ()))))
    return records, classes, part_names


def pixel_box(box: tuple[float, float, float, float], w: int, h: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), end-exclusive, of a CUB box (x, y, width, height) in a w x h image.

    As ProtoPNet's cropping: widened to whole pixels and clipped to the image;
    the whole image if nothing is left.
    """
    x, y, bw, bh = box
    x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
    x1, y1 = min(w, math.ceil(x + bw)), min(h, math.ceil(y + bh))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else (0, 0, w, h)


class CubSample(NamedTuple):
    """One prepared sample, in output coordinates."""

    image: np.ndarray  # uint8 (S, S, 3)
    mask: np.ndarray  # bool (S, S), the relevant region
    parts: dict[str, tuple[float, float]]  # visible part name -> (x, y)


class CubDataset(ImageDataset):
    """CUB-200-2011 images of one split as (float (3, S, S) in [0, 1], label) pairs.

    Args:
        root: the CUB_200_2011 folder (or its parent).
        split: "train", "push" (= train, un-augmented) or "test".
        img_size: output side S (224 as ProtoPNet).
        crop: crop to the bounding box (ProtoPNet) or keep the full image.
        part_radius: radius in output pixels of the discs that ``part_masks``
            draws around the annotated part points; None for img_size // 16.
        segmentations: use ``root/segmentations`` for the relevance masks when
            it exists (True), or always the bounding box (False).

    ``skipped`` lists the image files that could not be decoded.
    """

    def __init__(self, root: str | Path, split: str = "train", img_size: int = 224, *,
                 crop: bool = True, part_radius: int | None = None,
                 segmentations: bool = True) -> None:
        self.root = find_root(Path(root))
        self.split = check_split(split)
        self.img_size = check_img_size(img_size)
        for name, flag in (("crop", crop), ("segmentations", segmentations)):
            if not isinstance(flag, bool):
                raise ProtobenchError(f"cub200 option {name}={flag!r} must be True or False")
        if part_radius is None:
            part_radius = max(1, self.img_size // 16)
        if isinstance(part_radius, bool) or not isinstance(part_radius, int) or part_radius < 1:
            raise ProtobenchError(f"cub200 option part_radius={part_radius!r} must be an "
                                  f"integer >= 1 (output pixels)")
        self.crop, self.part_radius = crop, part_radius
        records, self.classes, self.part_names = read_annotations(self.root)
        records = [r for r in records if r.is_training == SPLIT_IS_TRAINING[split]]
        if not records:
            raise ProtobenchError(f"{self.root / 'train_test_split.txt'} lists no {split!r} images")

        paths = [self.root / "images" / r.path for r in records]
        ok, self.skipped = split_decodable(paths, f"cub200 {split} ({self.root})")
        self.records = [r for r, good in zip(records, ok) if good]
        if not self.records:
            raise ProtobenchError(f"no decodable {split!r} images under {self.root / 'images'}")
        seg_dir = self.root / "segmentations"
        self.segmentation_dir = seg_dir if segmentations and seg_dir.is_dir() else None
        self.labels = torch.tensor([r.label for r in self.records], dtype=torch.long)
        self._last: tuple[int, CubSample] | None = None

    def sample(self, i: int) -> CubSample:
        """Image, relevance mask and part points of image ``i`` (the last one is memoised)."""
        i = self.index(i)
        if self._last is not None and self._last[0] == i:
            return self._last[1]
        record = self.records[i]
        path = self.root / "images" / record.path
        rgb = read_rgb(path)
        if rgb is None:  # it decoded at construction: the file changed since
            raise ProtobenchError(f"image {path} can no longer be decoded")
        h, w = rgb.shape[:2]
        box = pixel_box(record.box, w, h)
        mask = self._segmentation(record, h, w)
        if mask is None:  # no segmentation: the box is the object (the whole crop when cropped)
            mask = np.zeros((h, w), bool)
            mask[box[1]:box[3], box[0]:box[2]] = True
        x0, y0, x1, y1 = box if self.crop else (0, 0, w, h)
        rgb, mask = rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1]
        sx, sy = self.img_size / (x1 - x0), self.img_size / (y1 - y0)
        parts = {self.part_names[pid]: ((px - x0) * sx, (py - y0) * sy)
                 for pid, px, py in record.parts if x0 <= px < x1 and y0 <= py < y1}
        out_mask = resize_square(mask.astype(np.uint8) * 255, self.img_size) >= 128
        result = CubSample(resize_square(rgb, self.img_size), out_mask, parts)
        self._last = (i, result)
        return result

    def _segmentation(self, record: CubRecord, h: int, w: int) -> np.ndarray | None:
        """bool (h, w): the bird's segmentation, or None when there is none."""
        if self.segmentation_dir is None:
            return None
        seg = read_grey(self.segmentation_dir / record.path.with_suffix(".png"))
        return seg > SEGMENTATION_THRESHOLD if seg is not None and seg.shape == (h, w) else None

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return to_image_tensor(self.sample(i).image), int(self.labels[self.index(i)])

    def relevance_mask(self, i: int) -> torch.Tensor:
        """bool (S, S): the bird's segmentation, else its box (the whole crop when cropped)."""
        return torch.from_numpy(self.sample(i).mask.copy())  # the sample is memoised: a copy

    def part_locations(self, i: int) -> dict[str, tuple[float, float]]:
        """Visible annotated parts of image ``i``: name -> (x, y) in output pixels."""
        return dict(self.sample(i).parts)

    def part_masks(self, i: int) -> dict[str, torch.Tensor]:
        """Discs of radius ``part_radius`` around each visible part point, bool (S, S)."""
        masks = {}
        for name, (x, y) in self.sample(i).parts.items():
            disc = np.zeros((self.img_size, self.img_size), np.uint8)
            cv2.circle(disc, (int(round(x)), int(round(y))), self.part_radius, 1, thickness=-1)
            masks[name] = torch.from_numpy(disc.astype(bool))
        return masks
