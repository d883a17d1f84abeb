"""python -m protobench.regress RESULTS_DIR --baseline results/baselines/NAME.csv

Compares a run's summary with pinned numbers and exits 1 when a metric moved
by more than its absolute tolerance (NAME.tolerances.toml beside the baseline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protobench.cli import command
from protobench.errors import cli_entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", type=Path, help="a run folder holding summary.csv")
    parser.add_argument("--baseline", type=Path, required=True, help="results/baselines/NAME.csv")
    parser.add_argument("--update", action="store_true",
                        help="rewrite the baseline's values from this run (deliberately)")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write the checks as JSON (status, values, tolerances)")
    parser.add_argument("--junit", type=Path, metavar="FILE",
                        help="also write the checks as JUnit XML, one test case per pinned metric")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict")


@cli_entry
def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:

    from protobench.bench.gate import (checks_record, compare, format_checks, junit_xml,
                                          update_baseline, version_differences)
    from protobench.storage import atomic_write, json_text

    if args.update:
        path = update_baseline(args.results_dir, args.baseline)
        print(f"baseline {path} rewritten from {args.results_dir}")
        return 0
    checks = compare(args.results_dir, args.baseline)
    for difference in version_differences(args.results_dir, args.baseline):
        print(f"warning: {difference}: a number may move for that reason alone", file=sys.stderr)
    if args.json:
        atomic_write(args.json, lambda tmp: tmp.write_text(json_text(checks_record(checks, args.baseline))))
    if args.junit:
        atomic_write(args.junit, lambda tmp: tmp.write_text(junit_xml(checks)))
    if not args.quiet:
        print(format_checks(checks))
    failed = [c for c in checks if not c.passed]
    if failed:
        print(f"\n{len(failed)} of {len(checks)} pinned metrics regressed")
        return 1
    print(f"\nall {len(checks)} pinned metrics within tolerance")
    return 0


main = command('regress', __doc__, add_arguments, execute)
