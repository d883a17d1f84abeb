"""How local is a "local" attack? Success split by the size of the perturbed region.

pgd-local may change the prototype's clean high-activation box, the bounding
box of the 95th-percentile region of its upsampled similarity map. When the
map has peaks far apart, that box spans most of the image and the attack is
no longer local. This splits a stored run's pairs at a fraction of the image:

    python research/box_size.py results/headline [--attack pgd-local] [--metric peak_in_target] [--above 0.5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a run folder holding pairs.csv")
    parser.add_argument("--attack", default="pgd-local")
    parser.add_argument("--metric", default="peak_in_target")
    parser.add_argument("--above", type=float, default=0.5,
                        help="a region is large when it changed more than this fraction of the pixels")
    args = parser.parse_args()
    pairs = pd.read_csv(args.results / "pairs.csv")
    attacked = pairs[(pairs["attack"] == args.attack) & ~pairs["control"].astype(bool)]
    print(f"| model | eps | pairs | changed more than {args.above:.0%} of the image | "
          f"{args.metric}: local region | {args.metric}: large region |")
    print("|---|---|---|---|---|---|")
    for (model, eps), group in attacked.groupby(["model", "eps"], sort=False):
        large = group["frac_changed"] > args.above

        def rate(g: pd.DataFrame) -> str:
            return f"{g[args.metric].mean():.0%} of {len(g)}" if len(g) else "-"
        print(f"| {model} | {eps * 255:.0f}/255 | {len(group)} | {large.mean():.0%} | "
              f"{rate(group[~large])} | {rate(group[large])} |")


if __name__ == "__main__":
    main()
