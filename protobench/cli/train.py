"""python -m protobench.train --recipe NAME: train a ProtoPNet from models/NAME.toml.

A training that is stopped and started again with the same recipe and --out
goes on from its last finished epoch (the state kept in OUT.resume).
"""

from __future__ import annotations

import argparse
import json
import sys

from protobench.cli import check_names, command, settings
from protobench.errors import cli_entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", help="recipe name (models/NAME.toml) or a .toml path")
    parser.add_argument("--model", help=argparse.SUPPRESS)  # the old name of --recipe
    parser.add_argument("--out", help="checkpoint to write (default: models/NAME.pt, with --seed "
                                      "models/NAME-seedS.pt; in an installed package, ./models/)")
    parser.add_argument("--seed", type=int, help="training seed, in place of the recipe's [train] "
                                                 "seed (initialisation, batch order; the images "
                                                 "stay [data] seed's)")
    parser.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", dest="settings",
                        help="any other recipe value, e.g. --set train.epochs=3 (repeatable; "
                             "needs --out: it makes another model)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-prototype-images", action="store_true",
                        help="do not save the prototype images beside the checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--fresh", action="store_true",
                        help="start over even where OUT.resume holds a stopped training's state")
    parser.add_argument("--snapshot", metavar="FILE",
                        help="train nothing: write the model of the training toward --out, as its "
                             "state (OUT.resume) holds it after its last finished epoch, to FILE as "
                             "a checkpoint (to evaluate or attack a long training midway)")


@cli_entry
def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.model is not None:
        if args.recipe is not None:
            parser.error("--model is the old name of --recipe: give --recipe only")
        print("note: train --model is now --recipe (--model names a checkpoint in the other "
              "commands)", file=sys.stderr)
        args.recipe = args.model
    if args.recipe is None:
        parser.error("the following arguments are required: --recipe")
    check_names(recipes=[args.recipe])

    from protobench.workflows import snapshot_training, train_model

    if args.snapshot:
        if args.fresh:
            parser.error("--snapshot reads the state that --fresh discards: give one of them")
        if args.seed is not None or args.settings:
            parser.error("--snapshot reads a training's state as it was started: leave out "
                         "--seed and --set")
        report = snapshot_training(args.recipe, args.out, args.snapshot)
        print(json.dumps(report.to_dict()))
        return 0

    try:
        report = train_model(args.recipe, args.out, args.device, progress=not args.quiet,
                             prototype_images=not args.no_prototype_images, fresh=args.fresh,
                             seed=args.seed, settings=settings(args.settings))
    except KeyboardInterrupt:
        print("interrupted; the same command goes on from the last finished epoch (the state "
              "kept beside the checkpoint, NAME.pt.resume)", file=sys.stderr)
        return 130
    if report.prototype_images is not None:
        print(f"prototype images in {report.prototype_images}")
    print(json.dumps(report.to_dict()))
    return 0


main = command('train', __doc__, add_arguments, execute)
