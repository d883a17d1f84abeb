"""What produced a run's numbers: code, versions, device, model digests (run.json and the resume key)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from protobench._version import __version__


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """The versions that decide a run's numbers; OpenCV draws and blurs synth's images."""
    import cv2
    import torchvision
    return {"protobench": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "opencv": cv2.__version__}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def state_digest(model: nn.Module) -> str:
    """SHA-256 of a module's state (names, shapes, dtypes and values): a checkpoint's digest in memory."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def data_digest(data, first: int, count: int) -> str:
    """SHA-256 of the images, labels and masks ``first`` to ``first + count`` of a data set:
    what identifies a caller's images in a run's settings."""
    import hashlib

    digest = hashlib.sha256()
    masks = getattr(data, "relevance_mask", None)
    for i in range(first, min(first + count, len(data))):
        x, y = data[i]
        digest.update(torch.as_tensor(x).detach().float().cpu().numpy().tobytes())
        digest.update(str(int(y)).encode())
        if masks is not None:
            mask = masks(i)
            digest.update(b"-" if mask is None else torch.as_tensor(mask).bool().cpu().numpy().tobytes())
    return digest.hexdigest()
