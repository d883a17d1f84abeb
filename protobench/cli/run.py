"""python -m protobench.run --attack pgd-local: run a benchmark sweep.

With no other argument it runs the embedded default: the default synth
models, the default sweep (benchmarks/default.toml: eps x steps x backbone),
every metric with the uniform-noise control beside each attack, and writes
results/<run-name>/ (pairs.csv, summary.csv/.md/.tex, run.json, figures/).
A sweep that is stopped and started again with the same arguments resumes.
"""

from __future__ import annotations

import argparse
import json

from protobench.cli import check_names, command, settings
from protobench.errors import cli_entry


def _int_at_least(lowest: int):
    """An argparse type: an integer >= ``lowest``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"{value} must be >= {lowest}")
        return value
    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1 or 'auto'") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from protobench.paths import ATTACKS_DIR, BENCHMARKS_DIR, preset_names

    p.add_argument("--attack", nargs="+", action="extend", metavar="NAME",
                   help=f"attack preset(s) from attacks/: {', '.join(preset_names(ATTACKS_DIR))} "
                        "(default: the suite's attacks, else pgd-local)")
    p.add_argument("--suite", default="default",
                   help=f"benchmark suite in benchmarks/: {', '.join(preset_names(BENCHMARKS_DIR))} "
                        "(default: default)")
    p.add_argument("--model", nargs="+", action="extend", metavar="NAME_OR_PATH",
                   help="model names (models/NAME.pt), checkpoint paths, or MODULE:FACTORY, a "
                        "model of your own code (a protobench model, or any prototype model "
                        "through protobench.PrototypeAdapter; then give --data) "
                        "(default: the suite's)")
    p.add_argument("--backbone", nargs="+", action="extend", metavar="NAME",
                   help="keep only the suite's models with these backbones")
    p.add_argument("--dataset", help="synth, cub200 or folder (default: each model's own)")
    p.add_argument("--data-root", help="folder of a cub200 / folder data set")
    p.add_argument("--data", metavar="MODULE:FACTORY",
                   help="the images of every model, from your own code: a data set of (image "
                        "(3, H, W) in [0, 1], label), with relevance_mask(i) where the object "
                        "masks are known")
    p.add_argument("--split", help="split the images come from (default: the suite's, test); "
                                   "'all' reads a plain folder of class subfolders whole")
    p.add_argument("--eps", nargs="+", metavar="EPS",
                   help="eps values, e.g. '2/255,8/255' or 2/255 8/255 (pixel units in (0, 1])")
    p.add_argument("--steps", nargs="+", metavar="STEPS", help="PGD step counts, e.g. '10,40' or 10 40")
    p.add_argument("--prototypes", help="top-k, class-top-k, or a list of indices '3,17'")
    p.add_argument("--top-k", dest="k", type=_positive_int, metavar="K",
                   help="how many prototypes per image for top-k and class-top-k (default: the "
                        "preset's, 1)")
    p.add_argument("--k", dest="k", type=_positive_int, help=argparse.SUPPRESS)  # its old name
    p.add_argument("--set", action="append", metavar="KEY=VALUE", dest="settings",
                   help="any other preset value, for every attack of the run, e.g. --set "
                        "method=apgd --set restarts=3 --set objective=target-margin "
                        "(repeatable; eps and steps are the sweep's axes: --eps, --steps)")
    p.add_argument("--limit", type=_positive_int, help="number of test images per model")
    p.add_argument("--first-image", type=int, metavar="INDEX",
                   help="index in the split of the first image (default: the suite's, 0); "
                        "images the committed results never used start at 32")
    p.add_argument("--seed", type=int, help="seed of random starts and noise (default: the suite's)")
    p.add_argument("--batch-size", type=_batch_size, metavar="N|auto",
                   help="pairs attacked at once (default: the suite's, 64); lower it when memory "
                        "runs out; 'auto' fills the GPU's free memory (a run with another batch "
                        "size is another run: use another --out; auto keeps a resumed run's)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--threads", type=_threads, metavar="N|auto",
                   help="CPU threads of torch (default: torch's own, one per core); 'auto': the free "
                        "cores (usable cores minus the load others make), chosen anew before each "
                        "work unit, faster on a shared machine but its numbers can differ in the last "
                        "digits from run to run; run.json records the choice")
    p.add_argument("--workers", type=_non_negative_int, default=0, metavar="N",
                   help="DataLoader processes that read and decode the images ahead of the "
                        "attack, per rank (default 0: the main process reads them); the results "
                        "do not depend on it")
    p.add_argument("--out", help="output folder (default: results/<attack names joined by '+'>, "
                                 "then '-<suite>' for a suite other than default; an attack given "
                                 "as a TOML path is named by its file name)")
    p.add_argument("--fresh", action="store_true",
                   help="recompute everything into --out, replacing the results of an earlier run there")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true",
                   help="end with one JSON object (the folder, the report, the compact table's "
                        "rows) instead of the table")


def _threads(text: str) -> int | str:
    """--threads N (>= 1) or 'auto'."""
    return "auto" if text == "auto" else _positive_int(text)


def _joined(values: list[str] | None) -> str | None:
    """--eps 2/255 8/255 and --eps 2/255,8/255 mean the same."""
    return None if values is None else ",".join(values)


@cli_entry
def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from protobench.factories import is_factory

    check_names(attacks=args.attack, suite=args.suite,
                models=[m for m in args.model or [] if not is_factory(m)])

    from protobench.bench.tables import compact_table, to_markdown
    from protobench.devices import choose_threads
    from protobench.workflows import benchmark

    result = benchmark(attacks=args.attack, suite=args.suite, models=args.model,
                       backbones=args.backbone, eps=_joined(args.eps), steps=_joined(args.steps),
                       prototypes=args.prototypes, k=args.k, attack_options=settings(args.settings),
                       limit=args.limit, seed=args.seed, split=args.split,
                       batch_size=args.batch_size, first_image=args.first_image,
                       device=args.device, workers=args.workers, out=args.out, fresh=args.fresh,
                       dataset=args.dataset, data_root=args.data_root, data=args.data,
                       figures=not args.no_figures, report=True, progress=not args.quiet,
                       threads=None if args.threads is None else choose_threads(args.threads),
                       command=["python", "-m", "protobench.run", *args.argv])
    if result.summary is None:  # a rank other than 0 of a sharded run: rank 0 reports
        return 0
    page = result.report
    compact = compact_table(result.summary)
    if args.json:
        print(json.dumps({"out": str(result.out), "report": str(page), "seconds": round(result.seconds, 1),
                          "computed": len(result.computed), "resumed": len(result.skipped),
                          "rows": compact.to_dict(orient="records")}))
        return 0
    print()
    print(to_markdown(compact))
    resumed = f", {len(result.skipped)} resumed from an earlier run" if result.skipped else ""
    print(f"{len(result.computed)} configurations computed{resumed} in {result.seconds:.0f} s")
    figures = "" if args.no_figures else ", figures/"
    print(f"results in {result.out}/ (pairs.csv, summary.csv/.md/.tex, compact.md/.tex, run.json{figures})")
    print(f"report: {page}")
    return 0


main = command("run", __doc__, add_arguments, execute)
