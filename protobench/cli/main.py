"""The ``protobench`` console script: ``protobench run ...`` = ``python -m protobench.run ...``.

One argparse parser with a subcommand per command; each subcommand takes the arguments of
its ``python -m protobench.NAME`` form (the same ``add_arguments`` and ``execute``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from protobench.cli import ArgumentParser

COMMANDS = {
    "run": "run a benchmark sweep",
    "train": "train a ProtoPNet from a recipe",
    "evaluate": "test accuracy, prototypes on the object and realism of a model; its card",
    "explain": "\"this looks like that\" figures",
    "figures": "regenerate a run's figures from stored results",
    "report": "an HTML page of a run, or a leaderboard across runs",
    "regress": "compare a run with a pinned baseline",
    "convert": "import an original ProtoPNet, TesNet or ProtoPool checkpoint",
    "list": "list the models, attacks, suites and backbones, with one line each",
}
MODULES = {"list": "listing"}  # a command whose module is named otherwise


def build_parser() -> tuple[ArgumentParser, dict[str, argparse.ArgumentParser]]:
    from protobench import __version__

    parser = ArgumentParser(prog="protobench", description="Robustness benchmark of prototype-based "
                            "image classifiers' explanations.")
    parser.add_argument("--version", action="version", version=f"protobench {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands",
                                     parser_class=ArgumentParser)
    parsers = {}
    for name, text in COMMANDS.items():
        module = importlib.import_module(f"protobench.cli.{MODULES.get(name, name)}")
        sub = commands.add_parser(name, help=text, description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        parsers[name] = sub
    return parser, parsers


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, parsers = build_parser()
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    args.argv = argv[1:]
    module = importlib.import_module(f"protobench.cli.{MODULES.get(args.command, args.command)}")
    return module.execute(args, parsers[args.command])
