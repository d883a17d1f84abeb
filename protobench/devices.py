"""Choosing the device: ``auto`` is CUDA when present, else the CPU; and how many CPU threads.

Under torchrun, ``auto`` and ``cuda`` mean the local rank's GPU (cuda:LOCAL_RANK).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ThreadChoice:
    """How many threads torch computes with on the CPU, and why (recorded in run.json).

    ``adaptive``: chosen anew before each work unit from the load the others put on the
    machine (:func:`free_cores`), so that a run keeps up with jobs that start or end beside it.
    """

    threads: int
    chosen_by: str
    adaptive: bool = False


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def free_cores(own_threads: int = 0) -> tuple[int, str] | None:
    """The cores the others leave free: the usable cores minus the 1-minute load average,
    less the ``own_threads`` this process keeps busy, rounded, at least 1 (None where the
    system has no load average)."""
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    others = max(0.0, load - own_threads)
    free = max(1, min(cores, round(cores - others)))
    return free, f"{cores} usable cores, load average {load:.2f} ({others:.2f} of it others'): {free} free"


def choose_threads(requested: int | str | None = None) -> ThreadChoice:
    """``requested`` threads, or (None or "auto") as many as there are free cores
    (:func:`free_cores`), chosen anew before each work unit.

    On a shared machine, torch's default (one thread per core) oversubscribes the cores that
    other work holds, and its threads then wait on each other: measured in
    research/threads.py, where the numbers behind this rule are.
    """
    if requested is not None and requested != "auto":
        if requested < 1:
            raise ProtobenchError(f"--threads {requested}: give a number of threads >= 1")
        return ThreadChoice(requested, "--threads")
    free = free_cores()
    if free is None:
        cores = usable_cores()
        return ThreadChoice(cores, f"{cores} usable cores (no load average here)")
    return ThreadChoice(free[0], free[1] + "; chosen anew before each work unit", adaptive=True)


def retune_threads(choice: ThreadChoice) -> int:
    """Before a work unit: an adaptive choice takes the cores that are free now (counting
    this process's own threads as its own); returns the threads in use."""
    if choice.adaptive:
        free = free_cores(torch.get_num_threads())
        if free is not None:
            torch.set_num_threads(free[0])
    return torch.get_num_threads()


def restores_threads(function):
    """``function`` leaves torch's number of CPU threads as it found it (a run that sets its
    own, called from Python, must not change the caller's)."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        saved = torch.get_num_threads()
        try:
            return function(*args, **kwargs)
        finally:
            torch.set_num_threads(saved)
    return wrapper
