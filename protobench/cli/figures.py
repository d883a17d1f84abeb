"""python -m protobench.figures RESULTS_DIR: regenerate a run's figures from stored results."""

from __future__ import annotations

from pathlib import Path

from protobench.cli import ArgumentParser, prog
from protobench.errors import ProtobenchError, cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=prog("figures"), description=__doc__)
    parser.add_argument("results_dir", type=Path, help="a run folder (results/<run-name>)")
    args = parser.parse_args(argv)
    if not args.results_dir.is_dir():
        raise ProtobenchError(f"{args.results_dir} is not a folder")
    from protobench.figures import make_figures
    for path in make_figures(args.results_dir):
        print(path)
    return 0
