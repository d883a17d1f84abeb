"""Where a ProtoPNet's background lies in its latent space: one code, or many?

A diagnostic of the realism figures (models/README.md). For the first test
images of a model, every latent cell z (the add-on layers' output, in
[0, 1] after the bottleneck's sigmoid) is split into object cells (the
cell's pixel block holds an object pixel) and irrelevant cells (it holds
none, as in :mod:`protobench.evaluation.realism`). Printed per group:

    |a|            median magnitude of the values at the add-on's last
                   sigmoid (its input a, z = sigmoid(a))
    saturation     mean |z - 0.5| over dimensions and cells (0.5: every
                   dimension at 0 or 1; 0: all at 0.5)
    spread         the standard deviation of each dimension across the
                   group's cells, averaged over dimensions (0: every cell
                   of the group has the same code)
    nearest d      the median over cells of the squared distance to the
                   nearest prototype

and the same saturation for the prototypes. A background that collapses to
one saturated code far from every prototype (small spread, large nearest d)
is what makes the best irrelevant cell thousands of times farther than the
best cell: no small patch change moves a cell off that code.

    python research/latent_codes.py --model synth-resnet18 [--images 64]
"""

from __future__ import annotations

import argparse

import torch

import protobench
from protobench.attacks.regions import block_fraction
from protobench.training import model_split


def has_latent_distances(model) -> bool:
    """Whether ``model`` has L2 prototypes in a sigmoid latent (ProtoPNet-like), as this needs."""
    return hasattr(model.net, "prototype_vectors") and getattr(model.net, "has_distances", True)


@torch.no_grad()
def latent_cells(model, data, images: int, batch_size: int = 16):
    """The latent cells z of the first ``images`` images and the values a at the add-on's last
    sigmoid (z = sigmoid(a)), one backbone pass per batch: ((object z (n, D), irrelevant z
    (m, D)), (object a, irrelevant a))."""
    obj, irr, obj_a, irr_a = [], [], [], []
    for start in range(0, images, batch_size):
        idx = range(start, min(start + batch_size, images))
        x = torch.stack([data[i][0] for i in idx])
        relevance = torch.stack([data.relevance_mask(i) for i in idx])
        add_on = model.net.add_on_layers
        a = add_on[:-1](model.net.features(model.normalize(x)))  # (B, D, h, w)
        z = add_on[-1](a)
        on_object = block_fraction(relevance, z.shape[-2:]) > 0     # (B, h, w)
        cells, pre = z.permute(0, 2, 3, 1), a.permute(0, 2, 3, 1)  # (B, h, w, D)
        obj.append(cells[on_object])
        irr.append(cells[~on_object])
        obj_a.append(pre[on_object])
        irr_a.append(pre[~on_object])
    return (torch.cat(obj), torch.cat(irr)), (torch.cat(obj_a), torch.cat(irr_a))


@torch.no_grad()
def describe(cells: torch.Tensor, prototypes: torch.Tensor) -> tuple[float, float, float]:
    if len(cells) == 0:
        return float("nan"), float("nan"), float("nan")
    saturation = float((cells - 0.5).abs().mean())
    spread = float(cells.std(dim=0).mean()) if len(cells) > 1 else float("nan")
    nearest = float((torch.cdist(cells, prototypes) ** 2).min(dim=1).values.median())
    return saturation, spread, nearest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["synth-smallcnn", "synth-resnet18"])
    parser.add_argument("--images", type=int, default=64, help="the first N test images")
    args = parser.parse_args()

    print("| model | cells | sigmoid input, median abs(a) | saturation mean abs(z - 0.5) | "
          "spread (std per dimension) | nearest prototype, median d |")
    print("|---|---|---|---|---|---|")
    for name in args.model:
        model = protobench.load(name).eval()
        if not has_latent_distances(model):
            raise SystemExit(f"{name}: latent codes are defined for ProtoPNet-like models with L2 "
                             "prototypes only")
        _, data = model_split(model, "test", name=name)
        n = min(args.images, len(data))
        prototypes = model.net.prototype_vectors.detach().flatten(1)
        (obj, irr), (obj_a, irr_a) = latent_cells(model, data, n)
        for label, cells, a in ((f"object ({len(obj)})", obj, obj_a),
                                (f"irrelevant ({len(irr)})", irr, irr_a)):
            sat, spread, nearest = describe(cells, prototypes)
            print(f"| {name} | {label} | {float(a.abs().median()):.2f} | {sat:.2f} | {spread:.2f} "
                  f"| {nearest:.3g} |")
        print(f"| {name} | prototypes ({len(prototypes)}) | | {float((prototypes - 0.5).abs().mean()):.2f} "
              f"| {float(prototypes.std(dim=0).mean()):.2f} | |")


if __name__ == "__main__":
    main()
