"""Small image helpers shared by push, explanations and figures.

Images are float tensors (3, H, W) in [0, 1]; files are written as PNG with
OpenCV. The heat-map overlay is ProtoPNet's: 0.5 * image + 0.3 * jet(map).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from protobench.errors import ProtobenchError
from protobench.model.receptive_field import upsample_maps


def to_hwc(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) float32 numpy."""
    return image.detach().float().cpu().permute(1, 2, 0).numpy().astype(np.float32)


def heatmap(cell_map: torch.Tensor, size: int | tuple[int, int]) -> np.ndarray:
    """Jet-coloured (H, W, 3) RGB in [0, 1] of a (h, w) cell map, bicubically upsampled."""
    up = upsample_maps(cell_map.detach().float().cpu()[None], size)[0].numpy()
    up = up - up.min()
    up = up / up.max() if up.max() > 0 else up
    jet = cv2.applyColorMap(np.uint8(255 * up), cv2.COLORMAP_JET)
    return jet[..., ::-1].astype(np.float32) / 255.0


def overlay(image: torch.Tensor, cell_map: torch.Tensor) -> np.ndarray:
    """ProtoPNet's activation overlay: 0.5 * image + 0.3 * heat map, (H, W, 3)."""
    img = to_hwc(image)
    return np.clip(0.5 * img + 0.3 * heatmap(cell_map, img.shape[:2]), 0, 1)


def draw_box(image: np.ndarray, box, color=(1.0, 1.0, 0.0), thickness: int = 1) -> np.ndarray:
    """A copy of (H, W, 3) ``image`` with the (y0, y1, x0, x1) box drawn."""
    out = np.ascontiguousarray(image.copy())
    y0, y1, x0, x1 = [int(v) for v in box]
    cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), color, thickness)
    return out


def draw_cells(image: np.ndarray, cells: np.ndarray, color=(1.0, 0.0, 0.0),
               thickness: int = 1) -> np.ndarray:
    """A copy of (H, W, 3) ``image`` with the outline of the (h, w) bool cell map drawn, each
    latent cell taken as its H/h x W/w block of pixels."""
    out = np.ascontiguousarray(image.copy())
    if not cells.any():
        return out
    blocks = cv2.resize(cells.astype(np.uint8), (out.shape[1], out.shape[0]),
                        interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(blocks, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, color, thickness)
    return out


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write (H, W, 3) RGB in [0, 1] as PNG."""
    rgb = np.uint8(np.clip(image, 0, 1) * 255 + 0.5)
    if not cv2.imwrite(str(path), rgb[..., ::-1]):
        raise OSError(f"could not write {path}")


# ------------------------------------------------------------------ JPEG
def check_quality(quality: int) -> int:
    """``quality`` as an int in [1, 100], or a :class:`ProtobenchError`."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ProtobenchError(f"JPEG quality {quality!r} is invalid; allowed: integers in [1, 100]")
    return int(quality)


def jpeg_compress(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode each image as JPEG at ``quality`` (OpenCV, 4:2:0 as libjpeg).

    images: (N, 3, H, W) float in [0, 1] (RGB). Returns (N, 3, H, W) float in
    [0, 1] on the same device and dtype; pixels are quantised to 1/255.
    """
    quality = check_quality(quality)
    rgb = (images.detach().clamp(0, 1) * 255).round().to(torch.uint8)
    rgb = rgb.permute(0, 2, 3, 1).cpu().numpy()
    out = np.empty_like(rgb)
    for i, img in enumerate(rgb):
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode image {i} as JPEG")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(images).div(255)
