"""What a benchmark run is asked to do: one record, the runner's only input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch.nn as nn
from torch.utils.data import Dataset

from protobench.devices import ThreadChoice


@dataclass
class RunSpec:
    """A sweep of attacks x models x eps x steps. Every field left None takes the suite's
    (or the preset's) value; ``attacks`` the suite's ``attacks``, else pgd-local.

    attacks          preset names or TOML paths
    suite            a suite name (benchmarks/<name>.toml) or path
    models           names, checkpoint paths or modules in memory: a protobench model
                     (named by its ``meta.name``; it records its data set and classes), or
                     any other prototype model (``protobench.PrototypeAdapter``; named by
                     its ``name`` attribute, else model<i>), which reads its images from ``data``
    backbones        keep only the models of these backbones
    eps, steps       the sweep's axes (lists, or comma-separated text)
    prototypes, k    which prototypes each image's pairs attack
    attack_options   any other preset value for every attack (``--set KEY=VALUE``)
    limit            images per model; first_image, split: which ones
    seed             seeds every work unit's random stream
    batch_size       pairs per work unit, or "auto" (from the GPU's free memory)
    device, workers  where the attacks run; DataLoader processes reading images ahead
                     (the numbers do not depend on them)
    out, fresh       the results folder (default results/<attacks>[-<suite>]); recompute
                     a folder that holds another run's results
    dataset, data_root  another data set for the models' split
    data             a data set of (image (3, H, W) in [0, 1], label), with
                     ``relevance_mask(i)`` where the objects' masks are known: every model
                     reads its images from it (run.json records their digest)
    figures          keep what the figures read (one local analysis per model); the figures
                     themselves are drawn by the caller (``protobench run``,
                     ``protobench.benchmark``, ``protobench figures``)
    progress         progress bars on stderr
    command          the command line run.json records (default: sys.argv)
    threads          torch's CPU threads for the run (a number or a ``ThreadChoice``);
                     None leaves the caller's setting
    """

    attacks: Sequence[str] | None = None
    suite: str | Path = "default"
    models: Sequence[str | Path | nn.Module] | None = None
    backbones: Sequence[str] | None = None
    eps: Sequence[float] | str | None = None
    steps: Sequence[int] | str | None = None
    prototypes: str | None = None
    k: int | None = None
    attack_options: dict[str, Any] | None = None
    limit: int | None = None
    seed: int | None = None
    batch_size: int | str | None = None
    first_image: int | None = None
    split: str | None = None
    device: str = "auto"
    workers: int = 0
    out: str | Path | None = None
    fresh: bool = False
    dataset: str | None = None
    data_root: str | None = None
    figures: bool = True
    progress: bool = True
    command: Sequence[str] | None = None
    threads: int | ThreadChoice | None = None
    data: Dataset | None = None
