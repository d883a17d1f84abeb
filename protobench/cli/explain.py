"""python -m protobench.explain --model NAME --image PATH_OR_INDEX: "this looks like that"."""

from __future__ import annotations

import argparse
from pathlib import Path

from protobench.cli import prog
from protobench.errors import ProtobenchError, cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog("explain"), description=__doc__)
    parser.add_argument("--model", required=True, help="model name or checkpoint path")
    parser.add_argument("--image", default="0",
                        help="an image file, or an index into the model's test split (default 0)")
    parser.add_argument("--top-k", type=int, default=5, help="prototypes to show (default 5)")
    parser.add_argument("--global", dest="global_k", type=int, default=0, metavar="K",
                        help="also write the global analysis: K nearest training images per prototype")
    parser.add_argument("--out", default="explanation.png", help="figure to write (PNG)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        raise ProtobenchError(f"--top-k must be >= 1, got {args.top_k}")

    from protobench.model.checkpoint import load_model
    from protobench.data.base import to_image_tensor
    from protobench.data.imread import read_rgb, resize_square
    from protobench.devices import resolve_device
    from protobench.explanations import local_analysis, nearest_patches
    from protobench.figures.explanations import plot_global_analysis, plot_local_analysis
    from protobench.figures.io import save_figure
    from protobench.training import model_data_source

    model = load_model(args.model, device=str(resolve_device(args.device)))
    source = model_data_source(model)
    push = source.load("push") if source else None
    if args.image.isdigit():
        if source is None:
            raise ProtobenchError("this model records no data set; pass --image PATH")
        test = source.load("test")
        index = int(args.image)
        if index >= len(test):
            raise ProtobenchError(f"--image {index}: the test split has {len(test)} images")
        image, label = test[index]
    else:
        rgb = read_rgb(Path(args.image))
        if rgb is None:
            raise ProtobenchError(f"--image {args.image}: not a file that can be decoded as an image")
        image, label = to_image_tensor(resize_square(rgb, model.img_size)), None
    analysis = local_analysis(model, image, label, args.top_k)
    out = save_figure(plot_local_analysis(analysis, push), args.out)
    print(f"wrote {out}")
    if args.global_k:
        if push is None:
            raise ProtobenchError("global analysis needs the model's training data set")
        idx, sims = nearest_patches(model, push, args.global_k)
        chosen = list(range(0, model.num_prototypes, max(1, model.num_prototypes // 10)))
        fig = plot_global_analysis(idx, sims, push, chosen, model.meta.classes, model.prototype_class)
        gout = save_figure(fig, Path(args.out).with_name(Path(args.out).stem + "-global.png"))
        print(f"wrote {gout}")
    return 0
