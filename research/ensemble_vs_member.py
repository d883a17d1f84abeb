"""Per pair, does an ensemble ever do worse than a standalone member run? From stored results.

    python research/ensemble_vs_member.py results/families results/headline results/defences

For every model and eps where both ``--ensemble`` (default auto-local) and ``--member``
(default pgd-local) were run on the same pairs, prints how many pairs the member puts
the peak in the target, or in an irrelevant cell, where the ensemble does not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def worse_pairs(pairs: pd.DataFrame, ensemble: str, member: str) -> pd.DataFrame:
    attacked = pairs[~pairs["control"].astype(bool)]
    rows = []
    for (model, eps), group in attacked.groupby(["model", "eps"]):
        ens = group[group["attack"] == ensemble].set_index(["image", "prototype"])
        mem = group[group["attack"] == member].set_index(["image", "prototype"])
        both = ens.merge(mem, left_index=True, right_index=True, suffixes=("_ens", "_mem"))
        if both.empty:
            continue
        row = {"model": model, "eps": f"{round(eps * 255)}/255", "pairs": len(both)}
        for rate in ("peak_in_target", "peak_irrelevant"):
            row[rate] = int(((both[f"{rate}_mem"] == 1) & (both[f"{rate}_ens"] == 0)).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="result folders holding pairs.csv")
    parser.add_argument("--ensemble", default="auto-local")
    parser.add_argument("--member", default="pgd-local")
    args = parser.parse_args()
    for folder in args.results:
        table = worse_pairs(pd.read_csv(folder / "pairs.csv"), args.ensemble, args.member)
        print(f"{folder}: pairs where {args.member} succeeds and {args.ensemble} does not")
        print(table.to_string(index=False) if not table.empty else "  (no shared pairs)")


if __name__ == "__main__":
    main()
