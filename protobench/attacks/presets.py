"""Attack presets: what to run, as data (``attacks/<name>.toml``).

A preset names the kind of attack, its threat model (norm, eps, alpha,
steps, restarts), the objective, the mask, the target region and which
prototypes are attacked. ``load_attack(name, **overrides)`` reads the TOML
file and applies overrides (from the command line, as strings, or from
Python); every value is checked, and a bad one is a
:class:`ProtobenchError` naming it and what is allowed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from protobench.attacks.acceleration import PRECISIONS
from protobench.attacks.bpda import BACKWARDS
from protobench.attacks.kinds import ATTACK_KINDS, foreign_options, get_kind
from protobench.attacks.kinds.base import choose, option_names, refuse
from protobench.attacks.objectives import MAP_OBJECTIVES, objective_names
from protobench.attacks.regions import MASKS
from protobench.attacks.targets import TARGET_ALIASES, TARGET_RULES
from protobench.errors import ProtobenchError
from protobench.metrics.criteria import CRITERIA
from protobench.fractions import parse_fraction
from protobench.threat import NORMS, threat_model_problem
from protobench.paths import ATTACKS_DIR, check_keys, preset_names, read_preset

# the built-in kinds and target rules; a preset is checked against the registries as they
# are then (protobench.attacks.kinds, protobench.attacks.targets), registrations included
KINDS = tuple(ATTACK_KINDS)
TARGETS = tuple(TARGET_RULES)
SELECTIONS = ("top-k", "class-top-k")
# What restarts and ensembles keep per pair: the largest margin of a success criterion
# (the peak lies in T / outside the clean box / in an irrelevant cell / outside R), or the
# objective itself; "auto" follows the objective (see AttackPreset.success_criterion).
SUCCESS = ("auto", *CRITERIA, "objective")  # protobench.metrics.criteria
# An ensemble member inherits the ensemble's threat model; it may set only these.
MEMBER_KEYS = ("name", "description", "method", "objective", "temperature", "target",
               "target_size", "restarts", "random_start", "backward")

_FLOATS = ("eps", "alpha", "irrelevant_threshold", "percentile", "temperature")
_INTS = ("steps", "restarts", "margin", "target_size", "k")
_INT_TUPLES = ("target_box", "qualities")


@dataclass(frozen=True)
class AttackPreset:
    """One named attack (attacks/README.md). All lengths in pixels, eps and alpha in [0, 1].

    name, description     the preset's name and what it is (with its paper)
    kind                  masked-pgd | ensemble | whole-image | jpeg | noise
    norm                  Linf | L2
    eps, alpha            radius and step size, numbers or fractions ("8/255")
    steps, restarts       steps per restart, restarts (per pair, the restart
                          with the largest success margin is kept)
    random_start          start from uniform noise inside the mask
    objective             displace | suppress | raise | target-margin |
                          box-margin | cross-entropy
    temperature           of target-margin and box-margin: 0 is the exact
                          max, tau > 0 the smooth tau * logsumexp(S / tau)
    success               the criterion restarts and ensembles keep the best
                          of, per pair: in-target | out-of-box | irrelevant |
                          moved | objective | auto (from the objective)
    exhaustive            restarts and ensembles: run every restart and member on
                          every pair and keep the deepest success (the continuous
                          metrics of the full search); default false, early exit:
                          a pair leaves once it succeeds (same pairs succeed)
    keep_prediction       also keep the clean prediction: the objective becomes
                          min(objective, class margin) and the success "the
                          criterion holds and the prediction is kept"
    mask                  where pixels may change: high-activation | target |
                          outside | full
    margin                pixels the box grows by for mask "outside"
    target                the target cells T: irrelevant (all irrelevant
                          cells outside R) | most-similar (the target_size^2
                          window of them where S_j is already highest) |
                          farthest (the window farthest from the peak;
                          formerly "irrelevant-box") | object-elsewhere
                          (the most-similar window of object cells outside
                          R, 2+ cells from the peak: Hoffmann et al.'s
                          stomach for a head prototype) | box (target_box,
                          pixels) | cells (target_cells, [row, col] pairs)
    irrelevant_threshold  a cell is irrelevant when at most this fraction of
                          its pixels is object (ground-truth mask)
    percentile            of the high-activation box (ProtoPNet: 95)
    prototypes, k         top-k (over all prototypes) | class-top-k (of the
                          true class) | an explicit list of prototype indices
    method                masked-pgd: pgd | apgd (the engine); whole-image:
                          pgd | fgsm | apgd (the engine, every pixel)
    qualities             jpeg: the qualities of the sweep
    members               ensemble: tables of MEMBER_KEYS; each member is this
                          preset (its threat model, steps, success) with those
                          keys changed, run as masked-pgd; per pair the member
                          with the largest success margin wins (AutoAttack's rule)
    precision, compile    how the attack runs the model: fp32 | bf16 (autocast of
                          the backbone; the prototype head stays fp32), and
                          torch.compile; both change the search, never the
                          measurement (protobench.attacks.acceleration)
    backward              masked attacks: exact (the model's own gradient) | bpda
                          (every sigmoid differentiated as its tangent at 0,
                          forward values unchanged: Athalye et al. 2018's remedy
                          for saturated units; protobench.attacks.bpda)
    """

    name: str = "custom"
    description: str = ""
    kind: str = "masked-pgd"
    norm: str = "Linf"
    eps: float = 8 / 255
    alpha: float = 2 / 255
    steps: int = 40
    restarts: int = 1
    random_start: bool = True
    objective: str = "displace"
    mask: str = "high-activation"
    margin: int = 0
    target: str = "irrelevant"
    target_size: int = 2
    target_box: tuple[int, ...] = ()
    target_cells: tuple[tuple[int, int], ...] = ()
    irrelevant_threshold: float = 0.0
    percentile: float = 95.0
    prototypes: str | tuple[int, ...] = "top-k"
    k: int = 1
    method: str = "pgd"
    qualities: tuple[int, ...] = (90, 75, 50, 30, 10)
    temperature: float = 0.0
    success: str = "auto"
    keep_prediction: bool = False
    exhaustive: bool = False
    members: tuple[dict[str, Any], ...] = ()
    precision: str = "fp32"
    compile: bool = False
    backward: str = "exact"
    extra: tuple[tuple[str, Any], ...] = ()  # a registered kind's options beyond these fields

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name)))
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists, not tuples), for run.json and tables; a kind's ``extra``
        options as keys of their own."""
        def plain(v: Any) -> Any:
            return [plain(x) for x in v] if isinstance(v, tuple) else v
        values = {k: plain(v) for k, v in asdict(self).items() if k != "extra"}
        return {**values, **{k: plain(v) for k, v in self.extra}}

    def value(self, name: str) -> Any:
        """The value of the field or ``extra`` option ``name``."""
        return getattr(self, name) if name in _FIELDS else dict(self.extra).get(name)

    def with_options(self, **overrides: Any) -> "AttackPreset":
        """This preset with fields and extra options changed (None leaves a value as it is)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        fields_given = {k: v for k, v in given.items() if k in _FIELDS}
        extra = {k: v for k, v in given.items() if k not in _FIELDS}
        kind = fields_given.get("kind", self.kind)
        check_extra(kind, extra, "attack options")
        return replace(self, **fields_given, extra=tuple(sorted({**dict(self.extra), **extra}.items())))

    @property
    def needs_target(self) -> bool:
        """Whether the objective, the success criterion or the mask uses the target cells T."""
        return get_kind(self.kind).uses_target(self)

    @property
    def success_criterion(self) -> str:
        """``success`` with "auto" resolved: the criterion the objective aims at."""
        if self.success != "auto":
            return self.success
        entry = MAP_OBJECTIVES.get(self.objective)
        return entry.criterion if entry is not None else "objective"

    def member_presets(self) -> list["AttackPreset"]:
        """An ensemble's members as masked-pgd presets (this preset with their keys changed)."""
        base = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("members", "kind", "name", "description")}
        return [AttackPreset(**{**base, "kind": "masked-pgd", "name": f"{self.name}[{i}]",
                                **member}) for i, member in enumerate(self.members)]


_FIELDS = {f.name for f in fields(AttackPreset)} - {"extra"}


def check_extra(kind: str, keys: Any, where: str) -> None:
    """Refuse keys that are no field of a preset unless ``kind`` (if registered) reads them;
    a key another kind reads is named with that kind."""
    keys = [k for k in keys if k not in _FIELDS]
    if not keys:
        return
    if kind in ATTACK_KINDS:
        own = option_names(get_kind(kind))
        foreign = foreign_options(kind, keys)
        if foreign:
            key, owners = next(iter(foreign.items()))
            raise ProtobenchError(f"{where}: {key} is an option of kind "
                                  f"{' and '.join(repr(o) for o in owners)}, not of {kind!r}")
        keys = [k for k in keys if k not in own]
    check_keys({k: None for k in keys}, sorted(_FIELDS), where)


def attack_names() -> list[str]:
    """The names of the presets in ``attacks/``."""
    return preset_names(ATTACKS_DIR)


def load_attack(name: str | Path, **overrides: Any) -> AttackPreset:
    """The preset ``attacks/<name>.toml`` (or a TOML file path), with overrides.

    Overrides whose value is None are ignored, so that unset command-line
    options can be passed through. Unknown names and keys raise.
    """
    path, data = read_preset(ATTACKS_DIR, name, "attack")
    given = {k: v for k, v in overrides.items() if v is not None}
    kind = str(given.get("kind", data.get("kind", "masked-pgd")))
    check_extra(kind, data, f"attack preset {path}")
    check_extra(kind, given, "attack options")
    values = {"name": path.stem, **data, **given}
    extra = {k: values.pop(k) for k in list(values) if k not in _FIELDS}
    values["extra"] = tuple(sorted(extra.items()))
    try:
        return AttackPreset(**values)
    except ProtobenchError as e:
        options = f", with the options given: {', '.join(f'{k}={v!r}' for k, v in given.items())}"
        raise ProtobenchError(f"{e} (preset {path}{options if given else ''})") from None


# ------------------------------------------------------------------ helpers
def _parse_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ProtobenchError(f"{name}={value!r} must be an integer")
    if isinstance(value, str):
        value = value.strip()
        try:
            return int(value)
        except ValueError:
            raise ProtobenchError(f"{name}={value!r} must be an integer") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    raise ProtobenchError(f"{name}={value!r} must be an integer")


def _parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if isinstance(value, (str, int)) and str(value).strip().lower() in words:
        return words[str(value).strip().lower()]
    raise ProtobenchError(f"{name}={value!r} must be true or false")


def _parse_ints(value: Any, name: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):  # qualities=50: a list of one
        value = [value]
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    if not isinstance(value, (list, tuple)):
        raise ProtobenchError(f"{name}={value!r} must be a list of integers")
    return tuple(_parse_int(v, name) for v in value)


def _parse_cells(value: Any) -> tuple[tuple[int, int], ...]:
    if isinstance(value, str):  # "r,c;r,c"
        value = [cell.split(",") for cell in value.replace(" ", "").split(";") if cell]
    if not isinstance(value, (list, tuple)) or any(
            not isinstance(c, (list, tuple)) or len(c) != 2 for c in value):
        raise ProtobenchError(f"target_cells={value!r} must be a list of [row, col] pairs")
    return tuple((_parse_int(r, "target_cells"), _parse_int(c, "target_cells")) for r, c in value)


def _parse_members(value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, (list, tuple)) or any(not isinstance(m, dict) for m in value):
        raise ProtobenchError(f"members={value!r} must be a list of tables ([[members]] in TOML)")
    for i, member in enumerate(value):
        unknown = sorted(set(member) - set(MEMBER_KEYS))
        if unknown:
            raise ProtobenchError(
                f"ensemble member {i} sets {', '.join(unknown)}; a member inherits the "
                f"ensemble's threat model and may set only: {', '.join(MEMBER_KEYS)}")
    return tuple(dict(m) for m in value)


def _coerce(name: str, value: Any) -> Any:
    if name in _FLOATS:
        return parse_fraction(value, name)
    if name in _INTS:
        return _parse_int(value, name)
    if name in _INT_TUPLES:
        return _parse_ints(value, name)
    if name in ("random_start", "compile", "keep_prediction", "exhaustive"):
        return _parse_bool(value, name)
    if name == "target_cells":
        return _parse_cells(value)
    if name == "members":
        return _parse_members(value)
    if name == "extra":
        return tuple(sorted(dict(value).items()))
    if name == "target" and isinstance(value, str):
        return TARGET_ALIASES.get(value, value)
    if name == "prototypes":
        if isinstance(value, str) and value.strip() in SELECTIONS:
            return value.strip()
        if isinstance(value, (list, tuple)) or (isinstance(value, str) and value[:1].isdigit()):
            return _parse_ints(value, name)
        raise ProtobenchError(f"prototypes={value!r} is invalid; allowed: "
                              f"{', '.join(SELECTIONS)} or a list of prototype indices")
    if not isinstance(value, str):
        raise ProtobenchError(f"{name}={value!r} must be a string")
    return value




def _validate(p: AttackPreset) -> None:
    """The checks every kind shares, then the kind's own (protobench.attacks.kinds)."""
    for name, allowed in (("kind", tuple(ATTACK_KINDS)), ("norm", NORMS),
                          ("objective", objective_names()), ("mask", MASKS),
                          ("target", tuple(TARGET_RULES)),
                          ("success", ("auto", *CRITERIA, "objective")),
                          ("precision", PRECISIONS), ("backward", BACKWARDS)):
        choose(p, name, allowed)
    kind = get_kind(p.kind)
    if p.backward != "exact":
        refuse(p, "backward", kind.masked,
               "'exact' for whole-image, jpeg and noise attacks (bpda: masked attacks)")
    refuse(p, "temperature", p.temperature >= 0.0, "a number >= 0 (0: the exact max)")
    if p.keep_prediction:
        refuse(p, "keep_prediction", kind.masked and p.objective != "cross-entropy",
               "false unless a masked attack ascends a map objective (masked-pgd or ensemble)")
    if p.temperature > 0:
        smooth = [name for name, entry in MAP_OBJECTIVES.items() if entry.smooth]
        refuse(p, "objective", p.objective in smooth,
               f"one of {', '.join(smooth)} when temperature > 0")
    kind.options(p)  # its options dataclass reads (and may refuse) the values
    kind.check(p)
    defaults = {f.name: f.default for f in fields(AttackPreset) if f.name != "extra"}
    for name, owners in foreign_options(p.kind, defaults).items():
        refuse(p, name, getattr(p, name) == defaults[name],
               f"its default {defaults[name]!r}: {name} is an option of kind "
               f"{' and '.join(repr(o) for o in owners)}, not of {p.kind!r}")
    for name in ("eps", "alpha", "steps", "restarts"):  # the bounds of protobench.threat
        allowed = threat_model_problem(name, getattr(p, name))
        refuse(p, name, allowed is None, allowed or "")
    refuse(p, "margin", p.margin >= 0, "an integer >= 0 (pixels)")
    refuse(p, "target_size", p.target_size >= 1, "an integer >= 1 (cells)")
    refuse(p, "k", p.k >= 1, "an integer >= 1")
    refuse(p, "irrelevant_threshold", 0.0 <= p.irrelevant_threshold < 1.0, "a fraction in [0, 1)")
    refuse(p, "percentile", 0.0 < p.percentile <= 100.0, "a number in (0, 100]")
    if isinstance(p.prototypes, tuple):
        refuse(p, "prototypes", len(p.prototypes) > 0 and min(p.prototypes) >= 0,
               "a non-empty list of prototype indices >= 0")
    if p.target == "box":
        b = p.target_box
        refuse(p, "target_box", len(b) == 4 and 0 <= b[0] < b[1] and 0 <= b[2] < b[3],
               "[y0, y1, x0, x1] in pixels, end-exclusive, with y0 < y1 and x0 < x1")
    if p.target == "cells":
        refuse(p, "target_cells", len(p.target_cells) > 0, "a non-empty list of [row, col] cells")
