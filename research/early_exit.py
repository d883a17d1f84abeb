"""What early exit saves, and that it finds the same pairs: restarts and ensembles with and
without it (``exhaustive = true``), on the same pairs, timed in one run.

    python research/early_exit.py [--models synth-smallcnn synth-efficientnet-lite0]
        [--images 32 --first-image 0] [--attacks auto-local pgd-local:restarts=5]

For each model and attack: the seconds of the full search and of early exit and their ratio,
the pairs whose peak each puts in the target (the success criterion of both presets) and
how many pairs disagree, and the prediction kept, which early exit may change (a pair keeps
its first success, not the deepest). The defaults are the headline suite's eps (8/255),
steps (40) and images (the first 32 of the test split).
"""

from __future__ import annotations

import argparse
import time

import torch

import protobench
from protobench.attacks import load_attack, measure, run_attack, select_pairs
from protobench.training import model_split


def parse_variant(text: str, **more):
    name, _, rest = text.partition(":")
    overrides = dict(item.split("=", 1) for item in rest.split(",") if item)
    return load_attack(name, **overrides, **more)


def timed(model, images, pairs, preset, seed):
    start = time.perf_counter()
    x_adv = run_attack(model, images, pairs, preset, torch.Generator().manual_seed(seed))[0].x_adv
    seconds = time.perf_counter() - start
    metrics, _ = measure(model, images, pairs, x_adv)
    return seconds, metrics.peak_in_target.bool(), metrics.pred_kept.bool()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["synth-smallcnn", "synth-efficientnet-lite0"])
    parser.add_argument("--attacks", nargs="+", default=["auto-local", "pgd-local:restarts=5"],
                        help="preset[:key=value,...]")
    parser.add_argument("--first-image", type=int, default=0)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"torch threads: {torch.get_num_threads()}; test images {args.first_image}-"
          f"{args.first_image + args.images - 1}, seed {args.seed}")
    print("| model | attack | full search (s) | early exit (s) | ratio | in target: full | "
          "early | pairs that differ | prediction kept: full | early |")
    print("|---" * 10 + "|")
    for name in args.models:
        model = protobench.load(name)
        _, data = model_split(model, "test", None, None, name)
        indices = range(args.first_image, min(args.first_image + args.images, len(data)))
        images = torch.stack([data[i][0] for i in indices])
        labels = torch.tensor([data[i][1] for i in indices])
        relevance = [data.relevance_mask(i) for i in indices]
        for text in args.attacks:
            full = parse_variant(text, exhaustive=True)
            early = parse_variant(text, exhaustive=False)
            pairs = select_pairs(model, images, labels, relevance, full)
            t_full, in_full, kept_full = timed(model, images, pairs, full, args.seed)
            t_early, in_early, kept_early = timed(model, images, pairs, early, args.seed)
            n = len(pairs)
            print(f"| {name} | {text} | {t_full:.0f} | {t_early:.0f} | {t_early / t_full:.2f} | "
                  f"{int(in_full.sum())}/{n} | {int(in_early.sum())}/{n} | "
                  f"{int((in_full != in_early).sum())} | {int(kept_full.sum())}/{n} | "
                  f"{int(kept_early.sum())}/{n} |", flush=True)


if __name__ == "__main__":
    main()
