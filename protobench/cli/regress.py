"""python -m protobench.regress RESULTS_DIR --baseline results/baselines/NAME.csv

Compares a run's summary with pinned numbers and exits 1 when a metric moved
by more than its absolute tolerance (NAME.tolerances.toml beside the baseline).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from protobench.cli import ArgumentParser, prog
from protobench.errors import cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=prog("regress"), description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results_dir", type=Path, help="a run folder holding summary.csv")
    parser.add_argument("--baseline", type=Path, required=True, help="results/baselines/NAME.csv")
    parser.add_argument("--update", action="store_true",
                        help="rewrite the baseline's values from this run (deliberately)")
    args = parser.parse_args(argv)

    from protobench.bench.regress import compare, format_checks, update_baseline

    if args.update:
        path = update_baseline(args.results_dir, args.baseline)
        print(f"baseline {path} rewritten from {args.results_dir}")
        return 0
    checks = compare(args.results_dir, args.baseline)
    print(format_checks(checks))
    failed = [c for c in checks if not c.passed]
    if failed:
        print(f"\n{len(failed)} of {len(checks)} pinned metrics regressed")
        return 1
    print(f"\nall {len(checks)} pinned metrics within tolerance")
    return 0
