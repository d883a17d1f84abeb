"""Noise augmentation at the threat model's budget, so that a model is not surprised by it.

A trunk trained on photographs reads uniform noise on synth's flat surfaces
as texture (ImageNet CNNs are texture-biased: Geirhos et al. 2019), and the
benchmark's noise control (uniform noise of eps inside a prototype's
high-activation box) then moves its explanations by itself. Training on
such noise teaches the network that it carries no class evidence.

:class:`RandomNoise` adds, with probability p, uniform noise in [-eps, eps]
to a training image, clipped to [0, 1]: over the whole image (``region =
"image"``) or inside one random square whose side is a fraction of the
image's drawn from ``size`` (``region = "patch"``; the noise control's box is
a patch too, and noise beside clean pixels is a texture edge that whole-image
noise does not show). Image i in epoch e draws from the stream (seed, e, i).

Recipe: ``noise_augment = {p = 0.5, eps = "8/255", region = "patch", size = [0.25, 0.5]}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from protobench.data.jpeg_experiment import _Wrapper, check_probability
from protobench.errors import ProtobenchError

REGIONS = ("image", "patch")


def noise_augment_settings(table: Any) -> tuple[float, float, str, tuple[float, float]]:
    """(p, eps, region, size) of a recipe's ``noise_augment`` table, checked."""
    from protobench.fractions import parse_fraction
    from protobench.paths import check_keys

    if not isinstance(table, dict):
        raise ProtobenchError(f"noise_augment={table!r} is invalid; allowed: a table "
                              '{p = 0.5, eps = "8/255", region = "patch", size = [0.25, 0.5]}')
    check_keys(table, {"p", "eps", "region", "size"}, "noise_augment")
    p = check_probability(table.get("p", 0.5), "noise_augment p")
    eps = parse_fraction(table.get("eps", 8 / 255), "noise_augment eps")
    if not 0.0 < eps <= 1.0:
        raise ProtobenchError(f"noise_augment eps={table.get('eps')!r} is invalid; allowed: a number "
                              "in (0, 1] (pixel units, e.g. 8/255)")
    region = table.get("region", "patch")
    if region not in REGIONS:
        raise ProtobenchError(f"noise_augment region={region!r} is invalid; allowed: "
                              f"{', '.join(repr(r) for r in REGIONS)}")
    size = table.get("size", [0.25, 0.5])
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or any(isinstance(s, bool) or not isinstance(s, (int, float)) for s in size)
            or not 0.0 < size[0] <= size[1] <= 1.0):
        raise ProtobenchError(f"noise_augment size={size!r} is invalid; allowed: [lo, hi] with "
                              "0 < lo <= hi <= 1 (the patch side as a fraction of the image's)")
    return p, eps, region, (float(size[0]), float(size[1]))


class RandomNoise(_Wrapper):
    """``dataset`` with uniform noise of ``eps`` on each image with probability ``p``, over
    the image or in a random square patch, anew each epoch."""

    def __init__(self, dataset, p: float = 0.5, eps: float = 8 / 255, region: str = "patch",
                 size: tuple[float, float] = (0.25, 0.5), seed: int = 0) -> None:
        super().__init__(dataset)
        self.p, self.eps, self.region, self.size = noise_augment_settings(
            {"p": p, "eps": eps, "region": region, "size": list(size)})
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        super().set_epoch(epoch)

    def noise_region(self, i: int, height: int, width: int) -> tuple[int, int, int, int] | None:
        """(y0, y1, x0, x1) that image ``i`` gets noise in this epoch, or None."""
        rng = np.random.default_rng([self.seed, 7_933, self.epoch, self.index(i)])
        if rng.random() >= self.p:
            return None
        if self.region == "image":
            return 0, height, 0, width
        side = max(1, round(rng.uniform(*self.size) * min(height, width)))
        y0, x0 = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        return y0, y0 + side, x0, x0 + side

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[i]
        box = self.noise_region(i, *image.shape[-2:])
        if box is None:
            return image, label
        y0, y1, x0, x1 = box
        generator = torch.Generator().manual_seed(
            int(np.random.default_rng([self.seed, 7_937, self.epoch, self.index(i)]).integers(2**62)))
        noise = (torch.rand(image.shape[0], y1 - y0, x1 - x0, generator=generator) * 2 - 1) * self.eps
        image = image.clone()
        image[:, y0:y1, x0:x1] = (image[:, y0:y1, x0:x1] + noise.to(image.dtype)).clamp(0, 1)
        return image, label

    def __repr__(self) -> str:
        return (f"RandomNoise({self.dataset!r}, p={self.p}, eps={self.eps:.4g}, region={self.region!r}, "
                f"size={list(self.size)})")
