"""A pretext task for the backbone: dense labels of random shape scenes.

ProtoPNet starts from an ImageNet backbone, whose feature cells describe
the image region under them. protobench downloads nothing, and training the
backbone on the benchmark's own images, labels or masks would build the
answer into the features. This module makes a *different* synthetic
distribution instead: scenes of random geometric shapes (ellipses,
rectangles, triangles, rings, blobs, bars) filled with random solid colours
or textures (gratings at any angle and frequency, dots, checks, noise) on a
smooth random background, with their own labels. Nothing in it is drawn
from ``synth``: no bird, no part layout, no class.

The task labels every feature cell twice, from the pixels of its block
(cell (r, c) owns the pixels with floor(y * h / H) = r):

- ``kind``: the (shape, fill) pair covering most of the block, or background;
- ``colour``: the hue bin (8 hues, or achromatic) of the shape covering most
  of the block, or background.

A backbone that solves it has cells that say what lies under them (shape,
texture, colour), as ImageNet features do, and nothing about any benchmark
class.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from protobench.errors import ProtobenchError

SHAPE_KINDS = ("ellipse", "rectangle", "triangle", "ring", "blob", "bar")
FILLS = ("solid", "grating", "dots", "checks", "noise")
HUE_BINS = 8
NUM_KINDS = len(SHAPE_KINDS) * len(FILLS) + 1      # + background (label 0)
NUM_COLOURS = HUE_BINS + 2                          # + achromatic + background (label 0)
SHAPES_PER_SCENE = (4, 9)


def _shape_polygon(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """(n, 2) polygon of a random ``kind`` shape, in pixels of a ``size`` image."""
    centre = rng.uniform(0, size, 2)
    r = rng.uniform(0.1, 0.3) * size
    angle = rng.uniform(0, 2 * np.pi)
    if kind in ("ellipse", "ring"):
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        pts = np.stack([r * np.cos(t), r * rng.uniform(0.4, 1.0) * np.sin(t)], 1)
    elif kind == "rectangle":
        a, b = r, r * rng.uniform(0.4, 1.0)
        pts = np.array([(-a, -b), (a, -b), (a, b), (-a, b)])
    elif kind == "triangle":
        t = np.sort(rng.uniform(0, 2 * np.pi, 3))
        pts = r * np.stack([np.cos(t), np.sin(t)], 1)
    elif kind == "blob":
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        radius = r * (1 + 0.3 * np.sin(3 * t + rng.uniform(0, 6)) + 0.2 * np.cos(5 * t + rng.uniform(0, 6)))
        pts = np.stack([radius * np.cos(t), radius * np.sin(t)], 1)
    else:  # bar
        a, b = r * 1.5, r * rng.uniform(0.12, 0.25)
        pts = np.array([(-a, -b), (a, -b), (a, b), (-a, b)])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return pts @ rot.T + centre


def _colour(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A random RGB colour and its hue label (1..HUE_BINS, or HUE_BINS + 1 achromatic)."""
    hue = rng.uniform(0, 180)
    sat = rng.choice([rng.uniform(0, 40), rng.uniform(90, 255)])
    val = rng.uniform(60, 255)
    rgb = cv2.cvtColor(np.uint8([[[hue, sat, val]]]), cv2.COLOR_HSV2RGB)[0, 0].astype(float)
    label = HUE_BINS + 1 if sat < 60 else 1 + int(hue / 180 * HUE_BINS) % HUE_BINS
    return rgb, label


def _fill_pattern(rng: np.random.Generator, fill: str, size: int) -> np.ndarray:
    """bool (size, size): where the second colour of ``fill`` shows."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(0.03, 0.1) * size
    a = (xs * np.cos(angle) + ys * np.sin(angle)) / period
    b = (-xs * np.sin(angle) + ys * np.cos(angle)) / period
    if fill == "solid":
        return np.zeros((size, size), bool)
    if fill == "grating":
        return np.floor(a) % 2 == 1
    if fill == "checks":
        return (np.floor(a) + np.floor(b)) % 2 == 1
    if fill == "dots":
        return ((a % 1 - 0.5) ** 2 + (b % 1 - 0.5) ** 2) < rng.uniform(0.06, 0.12)
    noise = rng.random((max(2, size // 8),) * 2).astype(np.float32)  # fill == "noise"
    return cv2.resize(noise, (size, size), interpolation=cv2.INTER_LINEAR) > 0.5


def render_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: rgb uint8 (size, size, 3), kind labels and colour labels uint8 (size, size)."""
    coarse = rng.uniform(40, 220, (3, 3, 3)).astype(np.float32)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 8, img.shape).astype(np.float32)
    kinds = np.zeros((size, size), np.uint8)
    colours = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(*SHAPES_PER_SCENE, endpoint=True)):
        k, f = rng.integers(len(SHAPE_KINDS)), rng.integers(len(FILLS))
        pts = _shape_polygon(rng, SHAPE_KINDS[k], size)
        inside = np.zeros((size, size), np.uint8)
        cv2.fillPoly(inside, [np.round(pts).astype(np.int32)], 1)
        if SHAPE_KINDS[k] == "ring":
            hole = (pts - pts.mean(0)) * rng.uniform(0.4, 0.7) + pts.mean(0)
            cv2.fillPoly(inside, [np.round(hole).astype(np.int32)], 0)
        inside = inside.astype(bool)
        if not inside.any():
            continue
        first, label = _colour(rng)
        second, _ = _colour(rng)
        pattern = _fill_pattern(rng, FILLS[f], size)
        img[inside & ~pattern] = first
        img[inside & pattern] = second
        kinds[inside] = 1 + k * len(FILLS) + f
        colours[inside] = label
    return np.clip(img, 0, 255).astype(np.uint8), kinds, colours


@functools.lru_cache(maxsize=2)
def pretext_scenes(count: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` scenes: images uint8 (N, 3, size, size), kind and colour labels uint8 (N, size, size)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ProtobenchError(f"pretext scenes: count={count!r} is invalid; allowed: an integer >= 1")
    images = np.empty((count, size, size, 3), np.uint8)
    kinds = np.empty((count, size, size), np.uint8)
    colours = np.empty((count, size, size), np.uint8)
    for i in range(count):
        images[i], kinds[i], colours[i] = render_scene(np.random.default_rng([seed, 7, i]), size)
    return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(kinds),
            torch.from_numpy(colours))


def cell_labels(labels: torch.Tensor, grid: tuple[int, int], num_labels: int) -> torch.Tensor:
    """The label covering most of each cell's block: (N, H, W) uint8 -> (N, h, w) long.

    Blocks as in :mod:`protobench.attacks.regions`: cell (r, c) owns the
    pixels with floor(y * h / H) = r and floor(x * w / W) = c.
    """
    (H, W), (h, w) = labels.shape[-2:], grid
    rows = torch.nn.functional.one_hot(torch.arange(H) * h // H, h).float()   # (H, h)
    cols = torch.nn.functional.one_hot(torch.arange(W) * w // W, w).float()   # (W, w)
    out = []
    for chunk in labels.split(64):  # a one-hot of every pixel is large: in chunks
        onehot = torch.nn.functional.one_hot(chunk.long(), num_labels).float()   # (n, H, W, L)
        out.append(torch.einsum("nyxl,yr,xc->nrcl", onehot, rows, cols).argmax(-1))
    return torch.cat(out)


class PretextScenes(Dataset):
    """(image float (3, H, W) in [0, 1], kind cell labels (h, w), colour cell labels (h, w))."""

    def __init__(self, count: int, size: int, grid: tuple[int, int], seed: int = 0) -> None:
        images, kinds, colours = pretext_scenes(count, size, seed)
        self.images = images
        self.kinds = cell_labels(kinds, grid, NUM_KINDS)
        self.colours = cell_labels(colours, grid, NUM_COLOURS)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.images[i].float().div_(255.0), self.kinds[i], self.colours[i]
