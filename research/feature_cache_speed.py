"""How much the feature cache saves: one recipe trained three ways, timed in one run.

    python research/feature_cache_speed.py [--recipe research/recipes/lite-tail6.toml]
                                             [--per-class 10] [--test-per-class 10]

The recipe's own schedule (every warm, joint and last-layer epoch, the push),
on ``--per-class`` training images of each class instead of the recipe's:

    plain        the original loop: every pass runs the whole backbone, and the
                 whole backbone learns in the joint epochs (trainable_blocks = -1)
    last blocks  only the recipe's last blocks learn, still without a cache
    cached       the recipe as written: the frozen part computed once per copy

Prints the seconds of each and the ratios to "plain". Run it alone: two jobs
on two cores slow each other.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from protobench.training import recipe_data
from protobench.training.recipe import load_recipe
from protobench.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]


def timed(recipe) -> tuple[float, float]:
    data = recipe_data(recipe)
    start = time.perf_counter()
    result = train(recipe, data.train, data.push, data.test, data.classes, progress=False,
                   log=lambda _: None)
    return time.perf_counter() - start, result.test_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "research/recipes/lite-tail6.toml"))
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--test-per-class", type=int, default=10)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    sched = recipe.schedule
    recipe = dataclasses.replace(recipe, schedule=sched, data_options={
        **recipe.data_options, "train_per_class": args.per_class, "test_per_class": args.test_per_class})
    if not sched.cached_augmentations:
        raise SystemExit(f"{args.recipe} caches nothing (cached_augmentations = 0)")
    ways = {
        "plain": dataclasses.replace(sched, trainable_blocks=-1, cached_augmentations=0),
        "last blocks": dataclasses.replace(sched, cached_augmentations=0),
        "cached": sched,
    }
    print(f"{recipe.name}: {args.per_class} training images a class, {sched.warm_epochs} warm + "
          f"{sched.epochs - sched.warm_epochs} joint epochs, push, {sched.last_layer_epochs} last-layer "
          f"epochs; trainable_blocks {sched.trainable_blocks}, cached copies "
          f"{sched.cached_augmentations}; torch threads {torch.get_num_threads()}")
    seconds = {}
    for name, schedule in ways.items():
        seconds[name], accuracy = timed(dataclasses.replace(recipe, schedule=schedule))
        print(f"  {name:<12} {seconds[name]:7.1f} s   test accuracy {accuracy:.1%}")
    for name in ("last blocks", "cached"):
        print(f"  plain / {name}: {seconds['plain'] / seconds[name]:.2f}x")


if __name__ == "__main__":
    main()
