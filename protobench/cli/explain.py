"""python -m protobench.explain --model NAME --image PATH_OR_INDEX: "this looks like that"."""

from __future__ import annotations

import argparse

from protobench.cli import check_names, command
from protobench.errors import cli_entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model name or checkpoint path")
    parser.add_argument("--image", default="0",
                        help="an image file, or an index into the model's test split (default 0)")
    parser.add_argument("--top-k", type=int, default=5, help="prototypes to show, 1 to 20 (default 5)")
    parser.add_argument("--global", dest="global_k", type=int, default=0, metavar="K",
                        help="also write the global analysis: K nearest training images (up to 20) per prototype")
    parser.add_argument("--out", help="figure to write, a .png (default: "
                                      "results/explanations/MODEL-IMAGE.png, IMAGE being testN "
                                      "for a test index or the file's name)")
    parser.add_argument("--jpeg", type=int, metavar="QUALITY",
                        help="also explain the image JPEG-compressed at QUALITY (Hoffmann et al.'s "
                             "JPEG figure): OUT is the clean image, OUT-jpegQUALITY.png the "
                             "compressed one; an index means the clean test image")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")


@cli_entry
def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    check_names(models=[args.model])
    from protobench.workflows import (explain_image, explain_jpeg, explanation_path, global_path,
                                      jpeg_path)

    if args.out is None:
        args.out = explanation_path(args.model, args.image)

    if args.jpeg is not None:
        explain_jpeg(args.model, args.image, args.jpeg, args.top_k, args.out, args.device)
        print(f"wrote {args.out} (clean) and {jpeg_path(args.out, args.jpeg)} (JPEG quality {args.jpeg})")
    else:
        explain_image(args.model, args.image, args.top_k, args.out, args.global_k, args.device)
        print(f"wrote {args.out}")
    if args.global_k:
        print(f"wrote {global_path(args.out)}")
    return 0


main = command('explain', __doc__, add_arguments, execute)
