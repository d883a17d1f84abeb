"""python -m protobench.train --model NAME: train a ProtoPNet from models/NAME.toml.

A training that is stopped and started again with the same recipe and --out
goes on from its last finished epoch (the state kept in OUT.resume).
"""

from __future__ import annotations

import json
import sys

from protobench.cli import ArgumentParser, check_names, prog
from protobench.errors import cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=prog("train"), description=__doc__)
    parser.add_argument("--model", required=True, help="recipe name (models/NAME.toml) or a .toml path")
    parser.add_argument("--out", help="checkpoint to write (default: models/NAME.pt; in an "
                                      "installed package, ./models/NAME.pt)")
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
    args = parser.parse_args(argv)
    check_names(recipes=[args.model])

    from protobench.workflows import snapshot_training, train_model

    if args.snapshot:
        if args.fresh:
            parser.error("--snapshot reads the state that --fresh discards: give one of them")
        report = snapshot_training(args.model, args.out, args.snapshot)
        print(json.dumps(report.to_dict()))
        return 0

    try:
        report = train_model(args.model, args.out, args.device, progress=not args.quiet,
                             prototype_images=not args.no_prototype_images, fresh=args.fresh)
    except KeyboardInterrupt:
        print("interrupted; the same command goes on from the last finished epoch (the state "
              "kept beside the checkpoint, NAME.pt.resume)", file=sys.stderr)
        return 130
    if report.prototype_images is not None:
        print(f"prototype images in {report.prototype_images}")
    print(json.dumps(report.to_dict()))
    return 0
