"""The prototype images that push saves, as the original does.

For prototype j: ``prototype-img{j}.png`` (the high-activation crop of its
source image), ``prototype-img-original{j}.png`` (the source image with the
box) and ``prototype-self-act{j}.png`` (its activation overlay on the
source image).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from protobench.imaging import draw_box, overlay, save_png, to_hwc
from protobench.model.classifier import PrototypeClassifier


@torch.no_grad()
def save_prototype_images(model: PrototypeClassifier, push_set: Dataset, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for record in model.meta.push_records:
        j = record["prototype"]
        image = push_set[record["image"]][0]
        y0, y1, x0, x1 = record["high_activation_box"]
        sim = model.similarity_maps(image[None].to(model.device))[0, j]
        img = to_hwc(image)
        save_png(folder / f"prototype-img{j}.png", img[y0:y1, x0:x1])
        save_png(folder / f"prototype-img-original{j}.png", draw_box(img, record["high_activation_box"]))
        save_png(folder / f"prototype-self-act{j}.png", overlay(image, sim))
    return folder
