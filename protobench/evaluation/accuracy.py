"""Top-1 accuracy of a model on a data set."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


@torch.no_grad()
def accuracy(model, data: Dataset, batch_size: int = 100) -> float:
    """Top-1 accuracy of ``model`` on ``data``."""
    correct = correct_predictions(model, data, batch_size)
    return int(correct.sum()) / max(len(correct), 1)


@torch.no_grad()
def correct_predictions(model, data: Dataset, batch_size: int = 100) -> torch.Tensor:
    """(N,) bool on the CPU: whether ``model`` classifies each image of ``data`` correctly."""
    model.eval()
    out = [model(images.to(model.device)).argmax(1).cpu() == labels
           for images, labels in DataLoader(data, batch_size=batch_size, shuffle=False)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)
