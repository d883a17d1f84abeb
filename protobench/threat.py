"""The threat model's bounds, checked in one place.

Attack presets, suites (the eps and steps axes of a sweep) and the engines
all validate norm, eps, alpha, steps and restarts here, with one wording:
``eps=1.5 is invalid; allowed: a number in [0, 1] (pixel units, e.g. 8/255)``.
No torch: reading a suite stays light.
"""

from __future__ import annotations

from typing import Any, Callable

from protobench.errors import ProtobenchError

NORMS = ("Linf", "L2")


def _is_count(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


# name -> (test, what is allowed)
BOUNDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "norm": (lambda v: v in NORMS, f"one of {', '.join(NORMS)}"),
    "eps": (lambda v: _is_number(v) and 0.0 <= v <= 1.0,
            "a number in [0, 1] (pixel units, e.g. 8/255)"),
    "alpha": (lambda v: _is_number(v) and 0.0 < v <= 1.0,
              "a number in (0, 1] (pixel units, e.g. 2/255)"),
    "steps": (_is_count, "an integer >= 1"),
    "restarts": (_is_count, "an integer >= 1"),
    # a sweep's eps: eps 0 changes nothing, so a sweep may not hold it
    "sweep eps": (lambda v: _is_number(v) and 0.0 < v <= 1.0,
                  "numbers in (0, 1] (pixel units; 8/255 = 0.0314); eps 0 changes nothing"),
}


def threat_model_problem(name: str, value: Any) -> str | None:
    """What is allowed for ``name`` when ``value`` is not, else None."""
    test, allowed = BOUNDS[name]
    return None if test(value) else allowed


def check(name: str, value: Any, where: str = "") -> None:
    """One :class:`ProtobenchError` when ``value`` is out of the bounds of ``name``."""
    allowed = threat_model_problem(name, value)
    if allowed is not None:
        label = name.split()[-1]
        raise ProtobenchError(f"{label}={value!r} is invalid{where}; allowed: {allowed}")


def check_threat_model(norm: str, eps: float, alpha: float, steps: int, restarts: int = 1,
                       where: str = "") -> None:
    """Every bound of a threat model; the error names the first bad value."""
    for name, value in (("norm", norm), ("eps", eps), ("alpha", alpha), ("steps", steps),
                        ("restarts", restarts)):
        check(name, value, where)
