"""Command-line entry points: ``python -m protobench.<command>`` or ``protobench <command>``."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable


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


def command(name: str, description: str | None,
            add_arguments: Callable[[argparse.ArgumentParser], None],
            execute: Callable[[argparse.Namespace, argparse.ArgumentParser], int]
            ) -> Callable[[list[str] | None], int]:
    """The ``main(argv)`` of ``python -m protobench.NAME``: its own parser, the same arguments
    and the same ``execute`` as ``protobench NAME`` (protobench.cli.main). ``args.argv``
    holds the command's arguments as given (run.json records them)."""
    def main(argv: list[str] | None = None) -> int:
        parser = ArgumentParser(prog=f"python -m protobench.{name}", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(parser)
        argv = list(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        args.argv = argv
        return execute(args, parser)

    main.__doc__ = f"python -m protobench.{name} [ARGS]: see --help"
    return main


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


def settings(items: list[str] | None) -> dict[str, str]:
    """--set KEY=VALUE pairs as a dict (the values are read later, as TOML values are)."""
    from protobench.errors import ProtobenchError

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ProtobenchError(f"--set {item!r}: write KEY=VALUE, e.g. --set restarts=3")
        out[key.strip()] = value.strip()
    return out
