""""The peak leaves the box": how much does the cell convention matter?

A prototype's peak leaves its clean high-activation box when its similarity
is higher in some cell outside the box than in every cell inside it. Which
cells are "inside" is a convention, and three are in use:

    centre        the cell's centre ((r + 0.5) H / h) lies in the box, a
                  centre on the box's edge included (protobench's
                  ``out_of_box``)
    centre, open  the same with the box's end edge excluded (protobench
                  before the edge was included: a cell of R could then lie
                  outside the box)
    touched       every cell whose block the box touches, y0 // step to
                  y1 // step inclusive with y1 end-exclusive (so a box that
                  ends on a block's edge takes that block too): Hoffmann et
                  al.'s success-rate notebook (``adv_training_attack1.ipynb``,
                  ``act_loc``), the most cells, the strictest criterion

This attacks the pairs once with a preset and scores the same attacked
images under each convention, with "the peak leaves R" beside them, and
counts the pairs where a convention says the peak left the box while it is
still in R (none should):

    python research/box_conventions.py [--model synth-smallcnn] [--attack pgd-local]
                                         [--first-image 0] [--images 32] [--seed 0]

Rates with 95% Wilson intervals. The notebook also counts an image as a
success when any of its top-5 prototypes' attack succeeds; this scores the
preset's pairs (pgd-local: the top-1 prototype) one by one.
"""

from __future__ import annotations

import argparse
import time

import torch

import protobench
from protobench.attacks import load_attack, run_attack, select_pairs
from protobench.metrics import rate_with_interval
from protobench.metrics.per_pair import out_of_box, peak_moved
from protobench.training import model_split


def centre_open(boxes: torch.Tensor, grid: tuple[int, int], size: int) -> torch.Tensor:
    """Cells whose centre lies in [y0, y1) x [x0, x1): the end edges excluded."""
    h, w = grid
    cy = (torch.arange(h) + 0.5) * size / h
    cx = (torch.arange(w) + 0.5) * size / w
    b = boxes.view(-1, 4, 1).to(cy.dtype)
    in_y = (cy >= b[:, 0]) & (cy < b[:, 1])
    in_x = (cx >= b[:, 2]) & (cx < b[:, 3])
    return in_y[:, :, None] & in_x[:, None, :]


def touched(boxes: torch.Tensor, grid: tuple[int, int], size: int) -> torch.Tensor:
    """The notebook's cells: rows y0 // step .. min(y1 // step, h - 1), the same for columns."""
    h, w = grid
    step = size // h
    rows, cols = torch.arange(h), torch.arange(w)
    y0, y1, x0, x1 = (boxes[:, i].view(-1, 1) // step for i in range(4))
    in_y = (rows >= y0) & (rows <= y1.clamp(max=h - 1))
    in_x = (cols >= x0) & (cols <= x1.clamp(max=w - 1))
    return in_y[:, :, None] & in_x[:, None, :]


def rate(flags: torch.Tensor) -> str:
    return rate_with_interval(int(flags.sum()), len(flags))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="synth-smallcnn")
    parser.add_argument("--attack", default="pgd-local")
    parser.add_argument("--first-image", type=int, default=0)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = protobench.load(args.model)
    _, data = model_split(model, "test", None, None, args.model)
    indices = range(args.first_image, min(args.first_image + args.images, len(data)))
    images = torch.stack([data[i][0] for i in indices])
    labels = torch.tensor([data[i][1] for i in indices])
    relevance = [data.relevance_mask(i) for i in indices]
    preset = load_attack(args.attack)
    pairs = select_pairs(model, images, labels, relevance, preset)
    start = time.perf_counter()
    x_adv = run_attack(model, images, pairs, preset, torch.Generator().manual_seed(args.seed))[0].x_adv
    with torch.no_grad():
        sim_after = model.similarity_maps(x_adv)[torch.arange(len(pairs)), pairs.prototype]
    grid, size = tuple(sim_after.shape[1:]), images.shape[-1]
    moved = peak_moved(sim_after, pairs.high_activation)
    print(f"{args.model}, {args.attack}, test images {indices.start}-{indices.stop - 1}, "
          f"{len(pairs)} pairs, seed {args.seed} ({time.perf_counter() - start:.0f} s)")
    print("| convention | cells inside the box (mean) | peak leaves the box | "
          "pairs with an R cell outside the box | leaves the box but not R |")
    print("|---|---|---|---|---|")
    for name, inside in (("centre (protobench)", pairs.box_cells),
                         ("centre, end edge open", centre_open(pairs.box, grid, size)),
                         ("touched (Hoffmann et al.'s notebook)", touched(pairs.box, grid, size))):
        left = out_of_box(sim_after, inside)
        r_outside = (pairs.high_activation & ~inside).flatten(1).any(dim=1)
        print(f"| {name} | {inside.flatten(1).sum(dim=1).float().mean():.1f} | {rate(left)} | "
              f"{int(r_outside.sum())} | {int((left & ~moved).sum())} |")
    print(f"| (the peak leaves R) | | {rate(moved)} | | |")


if __name__ == "__main__":
    main()
