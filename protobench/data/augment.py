"""Online augmentation equivalent to ProtoPNet's offline Augmentor set.

ProtoPNet's ``img_aug.py`` makes, from each training image, copies with one
of three Augmentor operations, each followed by a horizontal flip with
probability 0.5:

- rotate: angle uniform in +-15 degrees (Augmentor ``rotate(1, 15, 15)``);
- skew: perspective tilt of one side or one corner, by up to 0.2 of the side
  (Augmentor ``skew(1, magnitude=0.2)``);
- shear: angle uniform in +-10 degrees along x or y (Augmentor ``shear(1, 10, 10)``).

Here one operation is drawn per call instead of storing 30 copies per image.
As in Augmentor, rotation and shear zoom in so that the image fills the frame
(Augmentor crops the largest inner rectangle and resizes back); what is still
left outside the source is filled by reflection (cv2 ``BORDER_REFLECT_101``).
Every operation is one 3x3 homography, so masks follow the image exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from protobench.data.base import ImageDataset
from protobench.errors import ProtobenchError

OPERATIONS = ("rotate", "skew", "shear")


@dataclass(frozen=True)
class AugmentConfig:
    """ProtoPNet's augmentation settings (img_aug.py)."""

    max_rotation: float = 15.0  # degrees
    skew_magnitude: float = 0.2  # fraction of the image side
    max_shear: float = 10.0  # degrees
    flip_probability: float = 0.5


def _about_centre(M: np.ndarray, w: int, h: int) -> np.ndarray:
    """``M`` (3x3) applied about the image centre instead of the origin."""
    c = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]])
    c_inv = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
    return c @ M @ c_inv


def rotation(angle_deg: float, w: int, h: int) -> np.ndarray:
    """Rotate about the centre and zoom so that no corner of the frame leaves the source."""
    a = np.deg2rad(angle_deg)
    # Largest rectangle of the frame's aspect inside the rotated source: zoom by its inverse.
    zoom = abs(np.cos(a)) + abs(np.sin(a)) * max(w / h, h / w)
    R = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return _about_centre(np.diag([zoom, zoom, 1.0]) @ R, w, h)


def shear(angle_deg: float, axis: str, w: int, h: int) -> np.ndarray:
    """Shear along ``axis`` ('x' or 'y') about the centre, stretched back to fill the frame."""
    t = np.tan(np.deg2rad(angle_deg))
    if axis == "x":  # Augmentor crops the sheared-in border (h * |t| wide) and resizes back
        S = np.array([[w / max(w - h * abs(t), 1.0), 0, 0], [0, 1, 0], [0, 0, 1]]) @ \
            np.array([[1, t, 0], [0, 1, 0], [0, 0, 1]])
    else:
        S = np.array([[1, 0, 0], [0, h / max(h - w * abs(t), 1.0), 0], [0, 0, 1]]) @ \
            np.array([[1, 0, 0], [t, 1, 0], [0, 0, 1]])
    return _about_centre(S, w, h)


def skew(rng: np.random.Generator, magnitude: float, w: int, h: int) -> np.ndarray:
    """Augmentor's RANDOM skew: tilt one side or pull one corner outwards.

    The amount is an integer in [1, ceil(magnitude * max(w, h))] pixels; the
    image corners move to the new positions (a perspective warp).
    """
    src = np.array([(0, 0), (w, 0), (w, h), (0, h)], np.float32)  # TL, TR, BR, BL
    dst = src.copy()
    amount = rng.integers(1, int(np.ceil(magnitude * max(w, h))) + 1)
    kind = ("tilt", "tilt_left_right", "tilt_top_bottom", "corner")[rng.integers(4)]
    if kind == "corner":
        corner, along_x = rng.integers(4), bool(rng.integers(2))
        outward = np.sign(src[corner] - (w / 2, h / 2))
        dst[corner, 0 if along_x else 1] += amount * outward[0 if along_x else 1]
    else:
        side = {"tilt": rng.integers(4), "tilt_left_right": rng.integers(2),
                "tilt_top_bottom": 2 + rng.integers(2)}[kind]
        # left, right: the side's two corners spread vertically; top, bottom: horizontally
        corners, axis = [((0, 3), 1), ((1, 2), 1), ((0, 1), 0), ((3, 2), 0)][side]
        dst[corners[0], axis] -= amount
        dst[corners[1], axis] += amount
    return cv2.getPerspectiveTransform(src, dst).astype(np.float64)


def random_transform(rng: np.random.Generator, w: int, h: int,
                     config: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, str]:
    """(3x3 homography from source to output pixel coordinates, operation name).

    Coordinates are continuous: pixel (i, j) covers [j, j+1] x [i, i+1].
    """
    op = OPERATIONS[rng.integers(len(OPERATIONS))]
    if op == "rotate":
        M = rotation(rng.uniform(-config.max_rotation, config.max_rotation), w, h)
    elif op == "skew":
        M = skew(rng, config.skew_magnitude, w, h)
    else:
        axis = "x" if rng.random() < 0.5 else "y"
        M = shear(rng.uniform(-config.max_shear, config.max_shear), axis, w, h)
    if rng.random() < config.flip_probability:
        M = np.array([[-1, 0, w], [0, 1, 0], [0, 0, 1]]) @ M
        op += "+flip"
    return M, op


# Homographies here act on continuous coordinates (pixel i spans [i, i+1]); cv2 warps
# act on pixel indices (pixel i is the point i).
_INDEX_TO_CONTINUOUS = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])


def _on_indices(M: np.ndarray) -> np.ndarray:
    return np.linalg.inv(_INDEX_TO_CONTINUOUS) @ M @ _INDEX_TO_CONTINUOUS


def warp_image(image: torch.Tensor, M: np.ndarray) -> torch.Tensor:
    """float (3, H, W) in [0, 1] warped by ``M``; bilinear, reflected borders."""
    _, h, w = image.shape
    hwc = np.ascontiguousarray(image.permute(1, 2, 0).numpy(), dtype=np.float32)
    out = cv2.warpPerspective(hwc, _on_indices(M), (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)
    return torch.from_numpy(out.reshape(h, w, -1)).permute(2, 0, 1).clamp_(0, 1).contiguous()


def warp_mask(mask: torch.Tensor, M: np.ndarray) -> torch.Tensor:
    """bool (H, W) warped by ``M``; nearest neighbour, reflected like the image."""
    h, w = mask.shape
    out = cv2.warpPerspective(mask.numpy().astype(np.uint8), _on_indices(M), (w, h),
                              flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_REFLECT_101)
    return torch.from_numpy(out).bool()


def augment(image: torch.Tensor, rng: np.random.Generator,
            config: AugmentConfig = AugmentConfig()) -> torch.Tensor:
    """One augmented copy of ``image`` (float (3, H, W) in [0, 1])."""
    _, h, w = image.shape
    return warp_image(image, random_transform(rng, w, h, config)[0])


class Augmented(ImageDataset):
    """``dataset`` with every image augmented anew each epoch; labels unchanged.

    Image ``i`` in epoch ``e`` is augmented with the random stream
    ``(seed, e, i)``: deterministic, and independent of the order of access
    and of DataLoader workers. Call ``set_epoch(e)`` before each epoch (with
    ``persistent_workers=False`` the workers see the new epoch).
    """

    def __init__(self, dataset, seed: int = 0, config: AugmentConfig = AugmentConfig()) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ProtobenchError(f"augmentation seed must be an integer >= 0, got {seed!r}")
        self.dataset, self.seed, self.config = dataset, int(seed), config
        self.epoch = 0
        self.classes, self.img_size, self.labels = dataset.classes, dataset.img_size, dataset.labels

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def transform(self, i: int) -> tuple[np.ndarray, str]:
        """(3x3 homography, operation) applied to image ``i`` in the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, self.index(i)])
        return random_transform(rng, self.img_size, self.img_size, self.config)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        M, _ = self.transform(i)
        image, label = self.dataset[i]
        return warp_image(image, M), label

    def relevance_mask(self, i: int) -> torch.Tensor | None:
        """The wrapped data set's mask, warped like image ``i``."""
        mask = self.dataset.relevance_mask(i)
        return None if mask is None else warp_mask(mask, self.transform(i)[0])

    def part_masks(self, i: int) -> dict[str, torch.Tensor]:
        M = self.transform(i)[0]
        return {name: warp_mask(m, M) for name, m in self.dataset.part_masks(i).items()}

    def __repr__(self) -> str:
        return f"Augmented({self.dataset!r}, seed={self.seed}, epoch={self.epoch})"


def draw_augmentation(dataset, draw: int) -> None:
    """Give every training image a fresh augmentation: draw number ``draw`` of the data set's
    transforms, seeded by (seed, draw, image). Each pass over the training data (an epoch of
    any stage) takes a draw of its own; data sets without augmentation ignore it."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(draw)
