"""python -m protobench.evaluate --model NAME_OR_PATH: test accuracy of a ProtoPNet."""

from __future__ import annotations

import argparse
import json

from protobench.errors import ProtobenchError, cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protobench.evaluate", description=__doc__)
    parser.add_argument("--model", required=True, help="model name (models/NAME.pt) or checkpoint path")
    parser.add_argument("--dataset", help="synth, cub200 or folder (default: the model's recipe)")
    parser.add_argument("--data-root", help="folder of cub200 / folder data sets")
    parser.add_argument("--split", default="test", help="train, push or test (default: test)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    import protobench
    from protobench.data import load_dataset
    from protobench.devices import resolve_device
    from protobench.training.quality import prototypes_on_object
    from protobench.training.recipe import recipe_from_dict
    from protobench.training.trainer import accuracy

    device = resolve_device(args.device)
    model = protobench.load(args.model, device=str(device))
    raw = model.meta.recipe if "model" in model.meta.recipe else None
    if args.dataset:
        dataset, root, options = args.dataset, args.data_root, {}
    elif raw is not None:
        recipe = recipe_from_dict(model.meta.name, raw)
        dataset, root, options = recipe.dataset, args.data_root or recipe.data_root, recipe.data_options
    else:
        raise ProtobenchError(f"{args.model} records no data set; pass --dataset (and --data-root)")
    data = load_dataset(dataset, args.split, root=root, img_size=model.img_size, **options)
    if len(data.classes) != len(model.meta.classes):
        raise ProtobenchError(f"the model has {len(model.meta.classes)} classes, "
                              f"the {dataset} data set {len(data.classes)}")
    acc = accuracy(model, data)
    push = load_dataset(dataset, "push", root=root, img_size=model.img_size, **options)
    report = {"model": model.meta.name or str(args.model), "dataset": dataset, "split": args.split,
              "images": len(data), "accuracy": round(acc, 4),
              "prototypes_on_object": prototypes_on_object(model.meta.push_records, push)}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['model']}: accuracy {acc:.2%} on {len(data)} {dataset} {args.split} images")
        if report["prototypes_on_object"] is not None:
            print(f"prototypes whose high-activation box centre lies on the object: "
                  f"{report['prototypes_on_object']:.0%}")
    return 0
