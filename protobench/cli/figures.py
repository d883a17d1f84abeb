"""python -m protobench.figures RESULTS_DIR: regenerate a run's figures from stored results."""

from __future__ import annotations

import argparse
from pathlib import Path

from protobench.cli import command
from protobench.errors import ProtobenchError, cli_entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", type=Path, help="a run folder (results/<run-name>)")


@cli_entry
def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.results_dir.is_dir():
        raise ProtobenchError(f"{args.results_dir} is not a folder")
    from protobench.figures import make_figures
    for path in make_figures(args.results_dir):
        print(path)
    return 0


main = command('figures', __doc__, add_arguments, execute)
