"""``--batch-size auto``: as many pairs per batch as the GPU's free memory holds.

The batch size cuts a sweep into its work units, so it is part of a run's
settings: ``auto`` is resolved once, when a run starts, and a resumed run
keeps the size its folder was started with. On the CPU there is no memory
to probe and ``auto`` is the suite's batch size.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable, Sequence

import torch

# the share of free memory the attack may fill (the rest: the allocator's slack, the
# measuring pass and other processes)
HEADROOM = 0.6
MAX_BATCH = 4096
PROBE_PAIRS = 8


def batch_from_memory(free_bytes: float, pair_bytes: float, headroom: float = HEADROOM,
                      cap: int = MAX_BATCH) -> int:
    """Pairs per batch when each pair takes ``pair_bytes`` and ``free_bytes`` are free."""
    return int(max(1, min(cap, headroom * free_bytes // max(pair_bytes, 1.0))))


def stored_batch_size(out: Path) -> int | None:
    """The batch size of the run that started ``out`` (None when it holds no run)."""
    from protobench.bench.reuse import finished_parts

    settings = out / "settings.json"
    if not settings.is_file() or not finished_parts(out):
        return None
    return json.loads(settings.read_text()).get("suite", {}).get("batch_size")


def probe_pair_bytes(model, presets: Sequence, device: torch.device) -> float:
    """Peak GPU memory per pair of one attack step of each preset, on random images."""
    from protobench.attacks import run_attack, select_pairs

    size = model.img_size
    g = torch.Generator().manual_seed(0)
    images = torch.rand(PROBE_PAIRS, 3, size, size, generator=g).to(device)
    labels = torch.zeros(PROBE_PAIRS, dtype=torch.long, device=device)
    worst = 0.0
    for preset in presets:
        one_step = dataclasses.replace(preset, steps=1, restarts=1)
        pairs = select_pairs(model, images, labels, None, one_step)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run_attack(model, images, pairs, one_step, torch.Generator().manual_seed(0))
        torch.cuda.synchronize(device)
        worst = max(worst, (torch.cuda.max_memory_allocated(device) - base) / max(len(pairs), 1))
    return worst


def auto_batch_size(model_names: Sequence[str], presets: Sequence, device: torch.device,
                    default: int, load: Callable[[str], torch.nn.Module]) -> tuple[int, str]:
    """(the batch size, how it was chosen) for a run on ``device``."""
    if device.type != "cuda":
        return default, f"the suite's {default} (no memory to probe on the CPU)"
    free, _ = torch.cuda.mem_get_info(device)
    pair_bytes = max(probe_pair_bytes(load(name), presets, device) for name in model_names)
    size = batch_from_memory(free, pair_bytes)
    return size, (f"{size} pairs: {free / 2**30:.1f} GiB free, {pair_bytes / 2**20:.1f} MiB per "
                  f"pair at most (one step of each attack), {HEADROOM:.0%} of it used")
