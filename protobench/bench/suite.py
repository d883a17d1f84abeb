"""Benchmark suites: ``benchmarks/<name>.toml`` says which sweep to run.

    models   model names (models/<name>.pt) or checkpoint paths: the backbone axis
    eps      perturbation budgets, numbers or fractions ("8/255")
    steps    PGD step counts
    images   test images per model
    first_image  index in the split of the first of them (default 0); a
             held-out check starts past the images other suites use
    split    data split the images come from (default "test")
    seed     seed of every random start and of the noise control
    panels   pairs per configuration whose images are stored for figures
    batch_size  pairs attacked at once (memory; the random starts are drawn
                per batch, so it is part of a run's settings)
    local_analysis_k  prototypes shown in the stored local analysis
    attacks  the attack presets run when none is named (--attack); default pgd-local
    model_report  also measure each model on its whole split (accuracy; the JPEG
             experiment's accuracies when its data compresses classes), stored in
             models.json: what a defence costs
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from protobench import threat
from protobench.fractions import parse_fraction
from protobench.errors import ProtobenchError
from protobench.paths import BENCHMARKS_DIR, check_keys, read_preset


@dataclass(frozen=True)
class Suite:
    name: str = "default"
    description: str = ""
    models: tuple[str, ...] = ("synth-smallcnn",)
    eps: tuple[float, ...] = (8 / 255,)
    steps: tuple[int, ...] = (40,)
    images: int = 32
    first_image: int = 0
    split: str = "test"
    seed: int = 0
    panels: int = 4
    local_analysis_k: int = 3
    batch_size: int = 64
    attacks: tuple[str, ...] = ()
    model_report: bool = False
    # any other preset value for every attack of the suite ([attack_options] k = 5);
    # the command line's --set and --k take precedence
    attack_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.models:
            raise ProtobenchError("the suite names no model")
        if not isinstance(self.attack_options, dict):
            raise ProtobenchError(f"attack_options {self.attack_options!r} must be a table, "
                                  "e.g. [attack_options] k = 5")
        for axis in ("eps", "steps"):
            if axis in self.attack_options:
                raise ProtobenchError(f"attack_options.{axis}: {axis} is an axis of the sweep; "
                                      f"give it as the suite's {axis} list")
        for e in self.eps:
            threat.check("sweep eps", e, " in the sweep's eps (--eps, or the suite's eps list)")
        _check_no_repeats("models", self.models, str)
        _check_no_repeats("eps", self.eps, lambda e: f"{e:.6f}")  # as a configuration's id has it
        _check_no_repeats("steps", self.steps, str)
        for s in self.steps:
            threat.check("steps", s, " in the sweep's steps (--steps, or the suite's steps list)")
        if not isinstance(self.model_report, bool):
            raise ProtobenchError(f"model_report {self.model_report!r} must be true or false")
        if self.images < 1:
            raise ProtobenchError(f"images {self.images!r} must be >= 1")
        for name, lowest in (("batch_size", 1), ("seed", 0), ("first_image", 0), ("panels", 0),
                             ("local_analysis_k", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ProtobenchError(f"{name} {value!r} must be an integer >= {lowest}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _check_no_repeats(axis: str, values: tuple, key) -> None:
    """A value twice on an axis would be one configuration counted twice (its pairs, its
    intervals); eps values are the same configuration when they agree to 6 decimals."""
    seen: dict[str, Any] = {}
    for v in values:
        if key(v) in seen:
            same = "is listed twice" if seen[key(v)] == v else f"and {seen[key(v)]!r} agree to 6 decimals"
            raise ProtobenchError(f"the suite's {axis}: {v!r} {same}; give each value once")
        seen[key(v)] = v


def parse_eps_list(values: Any, where: str = "eps") -> tuple[float, ...]:
    """A list of eps from TOML or the command line ("2/255,8/255" or ["8/255", 0.1])."""
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    if not isinstance(values, (list, tuple)) or not values:
        raise ProtobenchError(f"{where}: expected a list of eps values, got {values!r}")
    return tuple(parse_fraction(v, where) for v in values)


def parse_int_list(values: Any, where: str) -> tuple[int, ...]:
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    if isinstance(values, int):
        values = [values]
    out = []
    for v in values:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            raise ProtobenchError(f"{where}: {v!r} is not an integer") from None
        if isinstance(v, float) and v != int(v):
            raise ProtobenchError(f"{where}: {v!r} is not an integer")
    return tuple(out)


def load_suite(name_or_path: str | Path = "default", **overrides: Any) -> Suite:
    """A suite by name (benchmarks/<name>.toml) or path, with overrides applied."""
    path, raw = read_preset(BENCHMARKS_DIR, name_or_path, "benchmark suite")
    check_keys(raw, {f.name for f in fields(Suite)} - {"name"}, str(path))
    raw = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    raw["name"] = path.stem
    for key in ("models", "attacks"):
        if key in raw:
            raw[key] = tuple([raw[key]] if isinstance(raw[key], str) else raw[key])
    if "eps" in raw:
        raw["eps"] = parse_eps_list(raw["eps"], "eps")
    if "steps" in raw:
        raw["steps"] = parse_int_list(raw["steps"], "steps")
    return Suite(**raw)


__all__ = ["Suite", "load_suite", "parse_eps_list", "parse_int_list", "replace"]
