"""The ``protobench`` console script: ``protobench run ...`` = ``python -m protobench.run ...``."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "run": "run a benchmark sweep",
    "train": "train a ProtoPNet from a recipe",
    "evaluate": "test accuracy of a model",
    "explain": "\"this looks like that\" figures",
    "figures": "regenerate a run's figures from stored results",
    "regress": "compare a run with a pinned baseline",
    "convert": "import an original ProtoPNet, TesNet or ProtoPool checkpoint",
    "list": "list the models, attacks, suites and backbones, with one line each",
}
MODULES = {"list": "listing"}  # a command whose module is named otherwise


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        from protobench import __version__
        print(f"protobench {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<9} {text}" for name, text in COMMANDS.items()]
        print("usage: protobench [--version] COMMAND [ARGS]\n\ncommands:\n" + "\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nerror: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    import protobench.cli
    protobench.cli.console_script = True
    try:
        return importlib.import_module(f"protobench.cli.{MODULES.get(argv[0], argv[0])}").main(argv[1:])
    finally:
        protobench.cli.console_script = False
