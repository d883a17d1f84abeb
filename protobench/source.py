"""What code computes a number besides its settings: protobench's version and source,
torch's version and the device type. A sweep (bench/reuse.py) and a training
(training/resume.py) resume only under the code that began them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from protobench._version import __version__


def code_identity(device: torch.device) -> dict[str, str]:
    """What computes the numbers besides the settings: protobench's version and source, torch, device."""
    return {"protobench": __version__, "source_sha256": source_digest(),
            "torch": str(torch.__version__), "device": device.type}


def source_digest() -> str:
    """SHA-256 of protobench's Python source (every .py file, by relative path)."""
    root = Path(__file__).resolve().parent  # the protobench package
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
