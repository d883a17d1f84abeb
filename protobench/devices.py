"""Choosing the device: ``auto`` is CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from protobench.errors import ProtobenchError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ProtobenchError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ProtobenchError(f"device {name!r} asked for, but CUDA is not available here; "
                              "use --device cpu or auto")
    return torch.device(name)
