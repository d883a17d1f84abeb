"""The sweep: which configurations an attack runs on a model, and their ids.

A configuration is one row of summary.csv: an attack (or its noise control)
at one setting (eps, steps; or JPEG quality) on one model. Its ``id`` names
its stored parts (parts/<id>.csv, .npz) and is written into the tables
(``config_id``), so that figures find a configuration's arrays without
rebuilding the id.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from protobench import storage
from protobench.attacks.kinds import get_kind
from protobench.attacks.presets import AttackPreset
from protobench.bench.suite import Suite
from protobench.bench.tables import CONFIG_COLUMNS


@dataclass(frozen=True)
class Configuration:
    """One row of summary.csv: an attack (or its control) at one setting on one model."""

    attack: str
    control: bool
    model: str
    backbone: str
    eps: float | None = None
    steps: int | None = None
    quality: int | None = None

    @property
    def id(self) -> str:
        parts = [self.attack, "control" if self.control else "attack", self.model]
        if self.eps is not None:
            parts.append(f"eps{self.eps:.6f}")
        if self.steps is not None:
            parts.append(f"steps{self.steps}")
        if self.quality is not None:
            parts.append(f"q{self.quality}")
        return storage.safe_name("-".join(parts))

    def columns(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in CONFIG_COLUMNS}

    @classmethod
    def from_row(cls, row: pd.Series) -> "Configuration":
        """The configuration of a table row (summary.csv or pairs.csv)."""
        def opt(v, cast):
            return None if pd.isna(v) else cast(v)
        return cls(row["attack"], bool(row["control"]), row["model"], row["backbone"],
                   opt(row["eps"], float), opt(row["steps"], int), opt(row["quality"], int))


def config_id(row: pd.Series) -> str:
    """A table row's configuration id: its ``config_id`` column, or rebuilt (older tables)."""
    if "config_id" in row and isinstance(row["config_id"], str):
        return row["config_id"]
    return Configuration.from_row(row).id


def configurations(preset: AttackPreset, model: str, backbone: str,
                   suite: Suite) -> list[tuple[Configuration, AttackPreset]]:
    """The sweep of one attack on one model, each attack followed by its control."""
    out = []
    kind = get_kind(preset.kind)
    sweep = kind.sweep(preset)
    if sweep is not None:  # the kind sweeps settings of its own (JPEG: each quality alone)
        for overrides, setting in zip(sweep, kind.settings(preset)):
            out.append((Configuration(preset.name, False, model, backbone, **setting),
                        dataclasses.replace(preset, **overrides)))
        return out
    step_counts: Sequence[int | None] = suite.steps if kind.has_steps(preset) else [None]
    for eps in suite.eps:
        for steps in step_counts:
            overrides: dict[str, Any] = {"eps": eps}
            if steps is not None:
                overrides["steps"] = steps
                # keep the preset's alpha relative to eps, as published presets scale it
                overrides["alpha"] = preset.alpha * eps / preset.eps if preset.eps else preset.alpha
            cfg_preset = dataclasses.replace(preset, **overrides)
            control = kind.is_control
            out.append((Configuration(preset.name, control, model, backbone, eps, steps), cfg_preset))
        if not kind.is_control:  # every attack beside the noise control of its eps
            out.append((Configuration(preset.name, True, model, backbone, eps), dataclasses.replace(
                preset, eps=eps)))
    return out
