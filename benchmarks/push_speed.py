"""Push, vectorised over prototypes, against the original's per-prototype loop.

SPEC section 8: at least 10x faster on the same model and data.

    python benchmarks/push_speed.py [--backbone smallcnn] [--images 1000] [--device cpu]

Prints both times (median of --repeats runs) and their ratio, twice: for the
whole push, and for the push's own work with the backbone's forward pass
replayed from a cache (the pass both must make, and the part a loop over
prototypes cannot slow down). Checks that both push the same prototypes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from protobench.data import load_dataset
from protobench.model import Architecture, ProtoPNet
from protobench.training.push import push_prototypes, push_prototypes_loop


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    model = ProtoPNet.build(arch).to(args.device).eval()
    start = model.ppnet.prototype_vectors.detach().clone()

    def vectorised():
        model.ppnet.prototype_vectors.data.copy_(start)
        push_prototypes(model, data)

    t_loop = timed(lambda: push_prototypes_loop(model, data), args.repeats)
    t_vec = timed(vectorised, args.repeats)

    # the same again with push_forward replayed from a cache
    forward = model.ppnet.push_forward
    cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def cached(x: torch.Tensor):
        key = hash(x[:, :, :4, :4].sum().item())  # batches differ; the same batch hashes equal
        if key not in cache:
            cache[key] = forward(x)
        return cache[key]

    model.ppnet.push_forward = cached
    push_prototypes_loop(model, data)  # fills the cache
    c_loop = timed(lambda: push_prototypes_loop(model, data), args.repeats)
    c_vec = timed(vectorised, args.repeats)
    model.ppnet.push_forward = forward
    model.ppnet.prototype_vectors.data.copy_(start)
    reference, _ = push_prototypes_loop(model, data)
    push_prototypes(model, data)
    same = torch.allclose(model.ppnet.prototype_vectors, reference, atol=1e-6)
    print(f"model {args.backbone} @ {args.img_size}px, {model.num_prototypes} prototypes, "
          f"{len(data)} push images, device {args.device}")
    print(f"{'':<24}{'whole push':>12}{'without forward':>18}")
    print(f"{'per-prototype loop':<24}{t_loop:11.3f}s{c_loop:17.3f}s")
    print(f"{'vectorised push':<24}{t_vec:11.3f}s{c_vec:17.3f}s")
    print(f"{'speed-up':<24}{t_loop / t_vec:11.1f}x{c_loop / c_vec:17.1f}x   (target >= 10x)")
    print(f"same prototypes: {same}")


if __name__ == "__main__":
    main()
