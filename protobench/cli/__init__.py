"""Command-line entry points: ``python -m protobench.<command>`` or ``protobench <command>``."""

from __future__ import annotations

import argparse
import re
import sys

# set by the ``protobench`` console script, so that help and usage lines name what the user typed
console_script = False


def prog(command: str) -> str:
    """The program name shown in help: ``protobench run`` or ``python -m protobench.run``."""
    return f"protobench {command}" if console_script else f"python -m protobench.{command}"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with protobench's error contract: one line ``error: ...`` naming the bad
    argument and where to look, exit status 2 (argparse prints the whole usage block).

    A negative fraction such as ``-1/255`` is read as a value, as argparse reads
    ``-1`` and ``-0.5``, so that the option's own check names what is wrong with it.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+|\d*\.\d+)(/(\d+|\d*\.\d+))?$")

    def error(self, message: str):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def check_names(attacks=None, suite=None, models=None, recipes=None) -> None:
    """Fail on a mistyped preset, suite, model or recipe name before torch is imported.

    Only file lookups: each name resolves as the command will resolve it later
    (protobench.paths), so the error is the same one, seconds earlier.
    """
    from protobench.paths import (ATTACKS_DIR, BENCHMARKS_DIR, MODELS_DIR, model_checkpoint,
                                  read_preset)

    for name in attacks or []:
        read_preset(ATTACKS_DIR, name, "attack")
    if suite is not None:
        read_preset(BENCHMARKS_DIR, suite, "benchmark suite")
    for name in models or []:
        model_checkpoint(name)
    for name in recipes or []:
        read_preset(MODELS_DIR, name, "model recipe")
