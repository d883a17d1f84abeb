"""Speed of the masked PGD engine, on one model and one set of pairs.

Two targets:

- time per step within 10% of a bare forward + backward pass of the same
  batch of N pairs (forward, gather of each pair's map, objective, backward
  to the input with frozen parameters: the work a step cannot avoid);
- at least 10x the throughput of attacking the same pairs one at a time.

    python research/attack_speed.py [--model untrained|synth-smallcnn|PATH]
                                      [--device cpu|cuda] [--pairs 64] [--steps 10]

Prints a table (median of --repeats, after a warm-up) and the two ratios.
The one-at-a-time time is measured on the first --single pairs and scaled.
"""

from __future__ import annotations

import argparse

import torch
from timing import timed

import protobench
from protobench.attacks import MaskedPGD, load_attack, make_objective, select_pairs
from protobench.devices import resolve_device
from protobench.attacks.engine import frozen
from protobench.model import Architecture, ProtoPNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="untrained",
                        help="'untrained' (smallcnn, 64 px), a model name or a checkpoint path")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--attack", default="pgd-local", help="the preset whose pairs are attacked")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--single", type=int, default=8,
                        help="pairs attacked one at a time (the rest is extrapolated)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)  # on CUDA: full fp32, as every protobench command
    torch.manual_seed(args.seed)

    if args.model == "untrained":
        model = ProtoPNet.build(Architecture()).to(device).eval()
    else:
        model = protobench.load(args.model, device=args.device)
    g = torch.Generator().manual_seed(args.seed)
    images = torch.rand(args.pairs, 3, model.img_size, model.img_size, generator=g).to(device)
    labels = torch.randint(0, len(model.meta.classes), (args.pairs,), generator=g).to(device)
    preset = load_attack(args.attack, steps=args.steps)
    pairs = select_pairs(model, images, labels, None, preset)
    objective = make_objective(preset, pairs)
    x = images[pairs.image_index]
    engine = MaskedPGD(model, preset.norm, preset.eps, preset.alpha, args.steps,
                       preset.random_start, 1)

    def bare() -> None:
        with frozen(model):
            for _ in range(args.steps):
                xr = x.detach().requires_grad_(True)
                torch.autograd.grad(objective(model, xr).sum(), xr)

    def batched() -> None:
        engine(x, pairs.mask, objective, torch.Generator().manual_seed(args.seed))

    n_single = min(args.single, len(pairs))

    def one_at_a_time() -> None:
        for i in range(n_single):
            engine(x[i:i + 1], pairs.mask[i:i + 1], objective.select(slice(i, i + 1)),
                   torch.Generator().manual_seed(args.seed))

    n = len(pairs)
    t_bare = timed(bare, args.repeats, device) / args.steps
    t_engine = timed(batched, args.repeats, device) / args.steps
    t_single = timed(one_at_a_time, args.repeats, device) / args.steps / n_single  # per pair

    print(f"model {args.model} ({model.meta.architecture.backbone}, {model.img_size} px, "
          f"{model.num_prototypes} prototypes) on {device}, {torch.get_num_threads()} threads; "
          f"attack {args.attack}, N={n} pairs, {args.steps} steps, median of {args.repeats}")
    print(f"{'':38s} {'ms / step':>10s} {'pair-steps / s':>15s}")
    rows = [(f"bare forward+backward, {n} pairs", t_bare, n / t_bare),
            (f"engine, {n} pairs at once", t_engine, n / t_engine),
            (f"engine, one pair at a time (x{n})", t_single * n, 1 / t_single)]
    for name, t, throughput in rows:
        print(f"{name:38s} {1000 * t:10.2f} {throughput:15.1f}")
    step_ratio = t_engine / t_bare
    speedup = t_single * n / t_engine
    print(f"engine step / bare forward+backward: {step_ratio:.3f}  (target <= 1.10: "
          f"{'ok' if step_ratio <= 1.10 else 'MISSED'})")
    print(f"batched / one-at-a-time throughput:  {speedup:.1f}x  (target >= 10x: "
          f"{'ok' if speedup >= 10 else 'MISSED'})")


if __name__ == "__main__":
    main()
