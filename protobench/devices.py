"""Choosing the device: ``auto`` is CUDA when present, else the CPU.

Under torchrun, ``auto`` and ``cuda`` mean the local rank's GPU (cuda:LOCAL_RANK).
"""

from __future__ import annotations

import torch

from protobench.errors import ProtobenchError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """The device ``name`` names; on CUDA, with full fp32 precision (see ``exact_fp32``)."""
    device = _resolve(name)
    if device.type == "cuda":
        exact_fp32()
    return device


def exact_fp32() -> None:
    """Turn off TF32 in matrix products and convolutions (on by default for cuDNN).

    TF32 keeps 10 bits of mantissa. ProtoPNet's squared distance
    ||z||^2 - 2 z.p + ||p||^2 cancels near a prototype (clean peaks sit at
    about 0.02 against terms of about 30), and the log similarity magnifies
    what is left: measured on an H200, TF32 moved the default run's clean
    top-1 similarity by 0.09-0.11 and flipped a clean prediction. The CPU's
    numbers are the reference, so the GPU computes in full fp32.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _resolve(name: str) -> torch.device:
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", _local_rank() % torch.cuda.device_count())
    if name == "auto":
        return torch.device("cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ProtobenchError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ProtobenchError(f"device {name!r} asked for, but CUDA is not available here; "
                              "use --device cpu or auto")
    return torch.device(name)


def _local_rank() -> int:
    import os
    return int(os.environ.get("LOCAL_RANK", "0"))
