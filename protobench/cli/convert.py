"""python -m protobench.convert OLD.pth --out NEW.pt: import an original ProtoPNet, TesNet or ProtoPool checkpoint once."""

from __future__ import annotations

import argparse

from protobench.cli import command
from protobench.errors import cli_entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", help="original checkpoint (.pth)")
    parser.add_argument("new", nargs="?", help="protobench checkpoint to write (.pt); or --out")
    parser.add_argument("--out", help="protobench checkpoint to write (.pt), as NEW")
    parser.add_argument("--img-size", type=int, default=None,
                        help="input size, for a state_dict (which does not record it); default 224")
    parser.add_argument("--activation", choices=("log", "linear"), default=None,
                        help="prototype activation function, for a state_dict (which does not "
                             "record it); default log")
    parser.add_argument("--family", choices=("protopnet", "tesnet"), default=None,
                        help="for a state_dict, which has the same parameter names in both: "
                             "ProtoPNet's or TesNet's (default protopnet); a whole module "
                             "records its class")


@cli_entry
def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if (args.new is None) == (args.out is None):
        parser.error("give the checkpoint to write once: NEW or --out NEW")
    args.new = args.new or args.out

    from protobench.model.checkpoint import load_model
    from protobench.model import save_checkpoint

    model = load_model(args.old, img_size=args.img_size, activation=args.activation,
                       family=args.family)
    save_checkpoint(model, args.new)
    arch = model.meta.architecture
    print(f"wrote {args.new}: {arch.family}, {arch.backbone}, {arch.img_size} px, "
          f"{model.num_prototypes} prototypes, {arch.num_classes} classes")
    return 0


main = command('convert', "Convert a checkpoint of the original ProtoPNet or TesNet code (whole module "
                    "or state_dict; resnet, vgg, densenet), or of ProtoPool's, into a protobench "
                    "checkpoint.", add_arguments, execute)
