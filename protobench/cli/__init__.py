"""Command-line entry points: ``python -m protobench.<command>`` or ``protobench <command>``."""

from __future__ import annotations

# set by the ``protobench`` console script, so that help and usage lines name what the user typed
console_script = False


def prog(command: str) -> str:
    """The program name shown in help: ``protobench run`` or ``python -m protobench.run``."""
    return f"protobench {command}" if console_script else f"python -m protobench.{command}"
