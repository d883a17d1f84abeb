"""Numbers as users write them: 0.0314, "0.0314" or "8/255" (eps and alpha in pixel units).

A module of its own, without torch, so that reading a suite or a preset's
numbers imports nothing heavy.
"""

from __future__ import annotations

import math
from typing import Any

from protobench.errors import ProtobenchError


def parse_fraction(value: Any, name: str = "value") -> float:
    """A number from a number or a string: 0.0314, "0.0314", "8/255"."""
    if isinstance(value, bool):
        raise ProtobenchError(f"{name}={value!r} is not a number; write e.g. 8/255 or 0.0314")
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            num, _, den = value.partition("/")
            result = float(num) / float(den) if den else float(num)
        except (ValueError, ZeroDivisionError):
            raise ProtobenchError(f"{name}={value!r} is not a number; write e.g. 8/255 "
                                  "or 0.0314") from None
    else:
        raise ProtobenchError(f"{name}={value!r} is not a number; write e.g. 8/255 or 0.0314")
    if math.isnan(result):
        raise ProtobenchError(f"{name}={value!r} is not a number; write e.g. 8/255 or 0.0314")
    return result
