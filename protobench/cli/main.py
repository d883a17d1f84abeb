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
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<9} {text}" for name, text in COMMANDS.items()]
        print("usage: protobench COMMAND [ARGS]\n\ncommands:\n" + "\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nerror: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    import protobench.cli
    protobench.cli.console_script = True
    try:
        return importlib.import_module(f"protobench.cli.{argv[0]}").main(argv[1:])
    finally:
        protobench.cli.console_script = False
