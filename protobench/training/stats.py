"""What a training epoch leaves in a checkpoint's history."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EpochStats:
    stage: str
    epoch: int
    accuracy: float
    loss: float
    ce: float
    clst: float
    sep: float
    l1: float
    seconds: float
    align: float = 0.0  # PIP-Net's terms (training/pipnet.py)
    tanh: float = 0.0
