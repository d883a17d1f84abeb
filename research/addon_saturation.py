"""Which add-on layers and joint schedule keep a ProtoPNet's latent unsaturated?

A diagnostic for the resnet18-class default model (models/README.md):
synth-resnet18's latent cells sit at the corners of [0, 1]^D (the values at
its add-on's last sigmoid have a median magnitude of 17 on object cells and
27 on irrelevant cells, latent_codes.py), which puts its
background thousands of times farther from the prototypes than its best
cells. This script separates the add-on layers and their schedule from
everything else: it keeps a trained model's backbone fixed (its features of
the push images and of the first test images are computed once) and trains
fresh add-on layers and prototypes on them with ProtoPNet's loss and
optimisers (``make_optimizers``: the warm stage, then the joint groups with
their StepLR; the backbone, fixed here, has no parameters to learn). The
last layer keeps its initial weights (1 to the prototype's class, -0.5 to
the others), as in ProtoPNet's warm and joint stages; there is no push.
Per run and reported epoch it prints, on the test cells, split into object
cells and irrelevant cells (no object pixel) as research/latent_codes.py
splits them:

    |a|          median magnitude of the add-on's last pre-sigmoid values
    saturation   mean |z - 0.5| (0.5: every dimension at 0 or 1)
    nearest d    median squared distance to the nearest prototype
    accuracy     on those test images

A run is ADD_ON:STEP:GAMMA, e.g. ``bottleneck:10:0.3`` (synth-resnet18's
recipe) or ``regular:5:0.1`` (Hoffmann et al.'s settings.py for their CUB
ResNet18, the original ProtoPNet's too).

    python research/addon_saturation.py [--model synth-resnet18] [--cache FILE]
                                          [--runs bottleneck:10:0.3 regular:5:0.1 ...]
                                          [--seeds 0 1 2]

The features are those of the trained model, adapted to its own add-on; a
fresh backbone would move with its add-on. So this ranks the add-on and the
schedule; it does not predict the trained model's figures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn as nn

import protobench
from protobench.attacks.regions import block_fraction
from protobench.model.classifier import PrototypeClassifier
from protobench.model.families.protopnet.network import PPNet
from protobench.training import model_split
from protobench.training.losses import LossCoefficients, training_loss
from protobench.training.recipe import LearningRates
from protobench.training.trainer import make_optimizers, seed_everything, set_stage


@torch.no_grad()
def backbone_features(model, split: str, images: int | None, batch_size: int = 32):
    """(features (N, C, h, w), labels (N,), relevance masks (N, H, W)) of a split's first images."""
    _, data = model_split(model, split)
    n = min(images or len(data), len(data))
    feats, labels, masks = [], [], []
    for start in range(0, n, batch_size):
        idx = range(start, min(start + batch_size, n))
        feats.append(model.net.features(model.normalize(torch.stack([data[i][0] for i in idx]))))
        labels.append(torch.tensor([data[i][1] for i in idx]))
        masks.append(torch.stack([data.relevance_mask(i) for i in idx]))
    return torch.cat(feats), torch.cat(labels), torch.cat(masks)


class FixedFeatures(nn.Identity):
    """The backbone's place in a PPNet trained on stored features."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels


@torch.no_grad()
def describe(net: PPNet, feats: torch.Tensor, labels: torch.Tensor, on_object: torch.Tensor) -> dict:
    """The latent's figures on stored test features, object and irrelevant cells apart."""
    a = net.add_on_layers[:-1](feats).permute(0, 2, 3, 1)  # the last sigmoid's input (N, h, w, D)
    z = net.add_on_layers[-1](a)
    prototypes = net.prototype_vectors.flatten(1)
    row = {}
    for group, cells in (("object", on_object), ("irrelevant", ~on_object)):
        row[f"a_{group}"] = float(a[cells].abs().median())
        row[f"saturation_{group}"] = float((z[cells] - 0.5).abs().mean())
        row[f"d_{group}"] = float((torch.cdist(z[cells], prototypes) ** 2).min(dim=1).values.median())
    logits, _ = net(feats)
    row["accuracy"] = float((logits.argmax(1) == labels).float().mean())
    return row


def probe(model, train, test, add_on: str, step: int, gamma: float, epochs: int, warm: int,
          report_at: set[int], seed: int = 0, batch_size: int = 64) -> list[dict]:
    """Train a fresh add-on and prototypes on stored features (the last layer stays at its init); rows at ``report_at``."""
    ppnet = model.net
    seed_everything(seed)
    net = PPNet(FixedFeatures(train[0].shape[1]), ppnet.img_size, ppnet.prototype_shape,
                ppnet.proto_layer_rf_info, ppnet.num_classes,
                prototype_activation_function=ppnet.prototype_activation_function,
                add_on_layers_type=add_on)
    wrapped = PrototypeClassifier(net, model.meta)  # the family's optimiser groups and stages
    optimizers = make_optimizers(wrapped, LearningRates())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizers["joint"], step, gamma)
    on_object = block_fraction(test[2], test[0].shape[-2:]) > 0
    order = torch.Generator().manual_seed(seed)
    rows = []
    for epoch in range(epochs + 1):
        if epoch in report_at:
            rows.append({"add-on": add_on, "joint step": step, "gamma": gamma, "seed": seed,
                         "epoch": epoch,
                         **describe(net.eval(), test[0], test[1], on_object)})
        if epoch == epochs:
            break
        stage = "warm" if epoch < warm else "joint"
        set_stage(wrapped, stage)
        net.train()
        perm = torch.randperm(len(train[0]), generator=order)
        for start in range(0, len(perm), batch_size):
            batch = perm[start:start + batch_size]
            logits, min_distances = net(train[0][batch])
            loss, _ = training_loss(wrapped, logits, min_distances, train[1][batch], LossCoefficients())
            optimizers[stage].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[stage].step()
        if stage == "joint":
            scheduler.step()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="synth-resnet18")
    parser.add_argument("--runs", nargs="+", default=["bottleneck:10:0.3", "bottleneck:5:0.1",
                                                      "regular:10:0.3", "regular:5:0.1"],
                        help="ADD_ON:STEP:GAMMA (add-on layers type, joint StepLR step and gamma)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs in all (warm first)")
    parser.add_argument("--warm", type=int, default=5)
    parser.add_argument("--test-images", type=int, default=128)
    parser.add_argument("--cache", type=Path, help="store / reuse the backbone features here")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="initialisation and batch-order seeds of each run")
    args = parser.parse_args()
    runs = []
    for run in args.runs:
        try:
            add_on, step, gamma = run.split(":")
            runs.append((add_on, int(step), float(gamma)))
        except ValueError:
            parser.error(f"--runs {run!r}: write ADD_ON:STEP:GAMMA, e.g. regular:5:0.1")
        if add_on not in ("regular", "bottleneck"):
            parser.error(f"--runs {run!r}: the add-on layers are 'regular' or 'bottleneck'")

    model = protobench.load(args.model).eval()
    if not hasattr(model.net, "add_on_layers_type"):
        raise SystemExit(f"{args.model}: not a ProtoPNet (no add-on layers type)")
    key = {"model": args.model, "test_images": args.test_images}
    if args.cache and args.cache.is_file():
        stored = torch.load(args.cache)
        if not isinstance(stored, dict) or stored.get("key") != key:
            raise SystemExit(f"{args.cache} does not hold the features of {key}; "
                             "pass another --cache")
        train, test = stored["train"], stored["test"]
    else:
        start = time.perf_counter()
        train = backbone_features(model, "push", None)[:2]
        test = backbone_features(model, "test", args.test_images)
        print(f"backbone features of {len(train[0])} push and {len(test[0])} test images: "
              f"{time.perf_counter() - start:.0f} s")
        if args.cache:
            torch.save({"key": key, "train": train, "test": test}, args.cache)
    report_at = {0, args.warm, args.epochs}
    report_at |= set(range(args.warm, args.epochs, 5))
    print("| add-on | joint StepLR | seed | epoch | pre-sigmoid abs(a), median: object / irrelevant "
          "| saturation: object / irrelevant | nearest d: object / irrelevant | accuracy |")
    print("|---|---|---|---|---|---|---|---|")
    for add_on, step, gamma in runs:
        for seed in args.seeds:
            for r in probe(model, train, test, add_on, step, gamma, args.epochs, args.warm,
                           report_at, seed=seed):
                print(f"| {r['add-on']} | x{r['gamma']:g} every {r['joint step']} | {seed} | {r['epoch']} "
                      f"| {r['a_object']:.2f} / {r['a_irrelevant']:.2f} "
                      f"| {r['saturation_object']:.2f} / {r['saturation_irrelevant']:.2f} "
                      f"| {r['d_object']:.3g} / {r['d_irrelevant']:.3g} | {r['accuracy']:.0%} |",
                      flush=True)


if __name__ == "__main__":
    main()
