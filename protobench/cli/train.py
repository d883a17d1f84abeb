"""python -m protobench.train --model NAME: train a ProtoPNet from models/NAME.toml."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from protobench.cli import prog
from protobench.errors import cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog("train"), description=__doc__)
    parser.add_argument("--model", required=True, help="recipe name (models/NAME.toml) or a .toml path")
    parser.add_argument("--out", help="checkpoint to write (default: models/NAME.pt; in an "
                                      "installed package, ./models/NAME.pt)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-prototype-images", action="store_true",
                        help="do not save the prototype images beside the checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    from protobench.devices import resolve_device
    from protobench.model import save_checkpoint
    from protobench.paths import CHECKPOINTS_DIR
    from protobench.training import load_recipe, recipe_data
    from protobench.training.prototype_images import save_prototype_images
    from protobench.training.quality import prototypes_on_object
    from protobench.training.trainer import train

    recipe = load_recipe(args.model)
    device = resolve_device(args.device)
    out = Path(args.out) if args.out else CHECKPOINTS_DIR / f"{recipe.name}.pt"
    data = recipe_data(recipe)
    result = train(recipe, data.train, data.push, data.test, data.classes, device,
                   progress=not args.quiet, pretrain_set=data.pretrain)
    on_object = prototypes_on_object(result.model.meta.push_records, data.push)
    result.model.meta.history["prototypes_on_object"] = on_object
    save_checkpoint(result.model, out)
    if not args.no_prototype_images:
        folder = save_prototype_images(result.model, data.push, out.with_suffix("") / "prototypes")
        print(f"prototype images in {folder}")
    print(json.dumps({"model": recipe.name, "checkpoint": str(out),
                      "test_accuracy": round(result.test_accuracy, 4),
                      "prototypes_on_object": on_object,
                      "train_seconds": round(result.seconds, 1), "device": str(device)}))
    return 0
