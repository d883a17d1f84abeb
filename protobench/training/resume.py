"""A stopped training (a killed job, the end of a session) goes on where it stopped.

While it trains toward ``NAME.pt``, the trainer keeps the whole training
state in ``NAME.pt.resume`` (:func:`resume_path`), rewritten atomically
after the backbone's pre-training and after every epoch (with the push and
the last-layer epochs that follow it):

- the weights, every optimiser's and the scheduler's state;
- every random generator: Python's, NumPy's, torch's (CPU and CUDA), the
  batch order's, mixup's and the adversary's;
- the history and push records so far, the last test accuracy and the
  training time spent.

Started again with the same recipe and ``--out``, the training loads it and
goes on from the next epoch; the checkpoint it writes is then the one an
uninterrupted run writes, bit for bit on the same device and thread count.
The file is removed once the checkpoint is written. A state written for
another recipe, or by other code (protobench's version or source, torch's
version, the device type: ``protobench.source.code_identity``), is
refused, never resumed. PIP-Net's stages
(training/pipnet.py) do not write one: a stopped PIP-Net training starts
over.

The file holds tensors and plain Python values only, so it loads with
``torch.load(weights_only=True)``, like the checkpoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protobench.errors import ProtobenchError
from protobench.storage import atomic_write
from protobench.training.push import PushRecord
from protobench.training.stats import EpochStats

FORMAT = 2  # 2: with the code identity (format 1, of 6cada4c, had none)


def resume_path(out: str | Path) -> Path:
    """Where a training toward checkpoint ``out`` keeps its state: ``out`` + '.resume'."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


def recipe_key(raw: dict[str, Any]) -> str:
    """A digest of the recipe's contents: a state resumes only the recipe it was written by."""
    text = json.dumps(raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class TrainingState:
    """Everything a training needs to go on from epoch ``next_epoch`` (0: after pre-training)."""

    recipe: str                                  # recipe_key of the recipe that wrote it
    code: dict[str, str]                         # protobench.source.code_identity
    next_epoch: int
    model: dict[str, torch.Tensor]               # ppnet.state_dict()
    optimizers: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    scheduler: dict[str, Any] | None = None
    generators: dict[str, Any] = dataclasses.field(default_factory=dict)  # name -> its get_state()
    global_rng: dict[str, Any] = dataclasses.field(default_factory=dict)
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    push_records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    test: float | None = None                    # test accuracy as last evaluated
    seconds: float = 0.0                         # training time spent before this state

    def epoch_stats(self) -> list[EpochStats]:
        return [EpochStats(**h) for h in self.history]

    def records(self) -> list[PushRecord]:
        return [PushRecord(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.items()})
                for r in self.push_records]


def global_rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's global random states, as plain values and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])  # pickle keeps its tuples
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, state: TrainingState) -> None:
    """Write ``state`` to ``path`` atomically: a stop while it writes leaves the previous one."""
    payload = {"format": FORMAT, **dataclasses.asdict(state)}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_state(path: Path, key: str, code: dict[str, str] | None) -> TrainingState | None:
    """The state at ``path`` if there is one (None otherwise), refused when another recipe
    (``key``) or other code (``code``) wrote it, or the file is not a training state.

    ``code`` None reads a state only for its weights and records (a snapshot,
    ``protobench.train --snapshot``): other code can read those, so the code is
    not checked, and format 1 (without the code identity) is read too.
    """
    if not path.exists():
        return None
    formats = (FORMAT,) if code is not None else (1, FORMAT)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise ProtobenchError(f"{path} is not a training state protobench can resume ({err}); "
                              "remove it, or train with --fresh, to start over") from None
    if not isinstance(payload, dict) or payload.get("format") not in formats:
        raise ProtobenchError(f"{path} is not a training state of this protobench (format "
                              f"{payload.get('format') if isinstance(payload, dict) else None!r}, "
                              f"expected {FORMAT}); remove it, or train with --fresh, to start over")
    if payload["recipe"] != key:
        raise ProtobenchError(f"{path} holds a stopped training of another recipe (or an edited one); "
                              "train with --fresh to discard it and start over, or choose another --out")
    payload.setdefault("code", {})  # format 1
    differ = [f"{k}: {payload['code'].get(k)} -> {v}" for k, v in (code or {}).items()
              if payload["code"].get(k) != v]
    if differ:
        raise ProtobenchError(f"{path} holds a training stopped under other code ({'; '.join(differ[:2])}); "
                              "resume it with that code, or train with --fresh to start over")
    payload.pop("format")
    return TrainingState(**payload)
