"""Push, vectorised over prototypes, against the original's per-prototype loop.

The bar: at least 10x faster on the same model and data.

    python research/push_speed.py [--backbone smallcnn] [--classes 10] [--device cpu]

Prints both times (median of --repeats runs, after a warm-up run) and their
ratio, twice:

- whole push: data loading, the backbone's forward pass and the search;
- search only: the same batches of latents (z, distances, labels), computed
  once beforehand and replayed to both. Only this part differs between the
  two: the original also makes one forward pass per batch, shared by all
  prototypes, so on a CPU the whole push is bound by that pass.

Checks that both push the same prototypes with the same boxes.
"""

from __future__ import annotations

import argparse

import torch
from timing import timed

from protobench.data import load_dataset
from protobench.devices import resolve_device
from protobench.model import Architecture, ProtoPNet
from protobench.training.push import (
    NearestPatches, OriginalLoop, latent_batches, push_prototypes, push_prototypes_loop,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="smallcnn")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--prototypes-per-class", type=int, default=10)
    parser.add_argument("--images-per-class", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)

    data = load_dataset("synth", "push", img_size=args.img_size, num_classes=args.classes,
                        train_per_class=args.images_per_class)
    arch = Architecture(backbone=args.backbone, img_size=args.img_size, num_classes=args.classes,
                        prototypes_per_class=args.prototypes_per_class)
    device = resolve_device(args.device)  # on CUDA: full fp32, as every protobench command
    model = ProtoPNet.build(arch).to(device).eval()
    start = model.net.prototype_vectors.detach().clone()

    def vectorised():
        model.net.prototype_vectors.data.copy_(start)
        return push_prototypes(model, data)

    with torch.no_grad():
        batches = list(latent_batches(model, data))

    def search_vectorised():
        search = NearestPatches(model)
        for batch in batches:
            search.update(*batch)
        return search.records()  # the boxes, as the loop computes them

    def search_loop():
        loop = OriginalLoop(model)
        for batch in batches:
            loop.update(*batch)
        return loop

    t_loop = timed(lambda: push_prototypes_loop(model, data), args.repeats, device)
    t_vec = timed(vectorised, args.repeats, device)
    s_loop = timed(search_loop, args.repeats, device)
    s_vec = timed(search_vectorised, args.repeats, device)

    model.net.prototype_vectors.data.copy_(start)
    reference, boxes = push_prototypes_loop(model, data)
    records = vectorised()
    same = (torch.equal(model.net.prototype_vectors, reference)
            and [tuple(r.high_activation_box) for r in records] == boxes)
    print(f"model {args.backbone} @ {args.img_size}px, {model.num_prototypes} prototypes, "
          f"{len(data)} push images, device {args.device}")
    print(f"{'':<24}{'whole push':>12}{'search only':>14}")
    print(f"{'per-prototype loop':<24}{t_loop:11.3f}s{s_loop:13.4f}s")
    print(f"{'vectorised push':<24}{t_vec:11.3f}s{s_vec:13.4f}s")
    print(f"{'speed-up':<24}{t_loop / t_vec:11.1f}x{s_loop / s_vec:13.1f}x   (target >= 10x)")
    print(f"same prototypes and boxes: {same}")


if __name__ == "__main__":
    main()
