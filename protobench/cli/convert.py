"""python -m protobench.convert OLD.pth NEW.pt: import an original ProtoPNet, TesNet or ProtoPool checkpoint once."""

from __future__ import annotations


from protobench.cli import ArgumentParser, prog
from protobench.errors import cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog=prog("convert"),
        description="Convert a checkpoint of the original ProtoPNet or TesNet code (whole module "
                    "or state_dict; resnet, vgg, densenet), or of ProtoPool's, into a protobench "
                    "checkpoint.")
    parser.add_argument("old", help="original checkpoint (.pth)")
    parser.add_argument("new", help="protobench checkpoint to write (.pt)")
    parser.add_argument("--img-size", type=int, default=None,
                        help="input size, for a state_dict (which does not record it); default 224")
    parser.add_argument("--activation", choices=("log", "linear"), default=None,
                        help="prototype activation function, for a state_dict (which does not "
                             "record it); default log")
    parser.add_argument("--family", choices=("protopnet", "tesnet"), default=None,
                        help="for a state_dict, which has the same parameter names in both: "
                             "ProtoPNet's or TesNet's (default protopnet); a whole module "
                             "records its class")
    args = parser.parse_args(argv)

    from protobench.model.checkpoint import load_model
    from protobench.model import save_checkpoint

    model = load_model(args.old, img_size=args.img_size, activation=args.activation,
                       family=args.family)
    save_checkpoint(model, args.new)
    arch = model.meta.architecture
    print(f"wrote {args.new}: {arch.family}, {arch.backbone}, {arch.img_size} px, "
          f"{model.num_prototypes} prototypes, {arch.num_classes} classes")
    return 0
