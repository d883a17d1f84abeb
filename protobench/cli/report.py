"""protobench report RUN_DIR: one self-contained HTML page of a run (RUN_DIR/report.html).

protobench report --leaderboard RUN_DIR...: one page that ranks every model x attack of the
runs by the share of pairs whose peak lies in the target, beside its noise control, and
links to each run's page (written too).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from protobench.cli import command
from protobench.errors import cli_entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run folder(s) written by protobench run (results/<run-name>)")
    parser.add_argument("--leaderboard", action="store_true",
                        help="rank the model x attack rows of all the runs on one page")
    parser.add_argument("--out", type=Path,
                        help="page to write (default: RUN_DIR/report.html; with --leaderboard, "
                             "leaderboard.html in the runs' common parent folder)")


@cli_entry
def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from protobench.report import write_leaderboard, write_run_page

    if args.leaderboard:
        out = args.out or _common_parent(args.run_dirs) / "leaderboard.html"
        print(f"wrote {write_leaderboard(args.run_dirs, out)}")
        return 0
    if len(args.run_dirs) > 1:
        if args.out:
            parser.error("--out names one page: give one RUN_DIR, or --leaderboard")
        for run_dir in args.run_dirs:
            print(f"wrote {write_run_page(run_dir)}")
        return 0
    print(f"wrote {write_run_page(args.run_dirs[0], args.out)}")
    return 0


main = command('report', __doc__, add_arguments, execute)


def _common_parent(run_dirs: list[Path]) -> Path:
    import os
    return Path(os.path.commonpath([d.resolve().parent for d in run_dirs]))
