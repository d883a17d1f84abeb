"""Scale: what a pair-step costs, how ranks add up, and how long a suite would take.

A pair-step is one step of the attack on one (image, prototype) pair: a forward
and backward pass of one image, the unit every sweep is made of. Four modes:

    python research/scale.py costs [--backbones smallcnn:64 resnet18:224 ...]
                                     [--pairs 1 8] [--steps 2] [--device cpu|cuda] [--out costs.csv]
        seconds per pair-step of pgd-local (masked Auto-PGD, the margin objective)
        for each backbone at its image size, with CUB's 200 classes x 10
        prototypes; untrained weights (the cost does not depend on them).

    python research/scale.py ranks [--nproc 1 2]
        the runner under torchrun with N gloo ranks on a small sweep of
        synth-smallcnn (32 work units), the CPU's threads split between the
        ranks; wall time and speed-up against one rank.

    python research/scale.py project --costs costs.csv [--suite cub-full] [--ranks 1 8 64]
                                       [--reference smallcnn=52900]
        the suite's pair-steps per model (images x k x the sum of its step
        counts over eps) times each backbone's cost, divided by the ranks
        (linear: ranks share nothing but two barriers). --reference
        BACKBONE=PAIR_STEPS_PER_S, a throughput measured on the target device
        for one backbone, scales every cost by that backbone's ratio
        (a GPU projection from CPU cost ratios; better measured with
        `costs --device cuda` there).

    python research/scale.py memory [--suite cub-full] [--backbone resnet18:224]
        the bytes each (image, prototype) pair takes while a sweep keeps it (every
        pair of a model and attack stays in memory between selection and its work
        unit), per field, and times the suite's images x k; beside it, what a
        stored pixel mask would add. CUB's 200 classes x 10 prototypes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent


def costs(args) -> pd.DataFrame:
    from protobench.attacks import load_attack, run_attack, select_pairs
    from protobench.devices import resolve_device
    from protobench.model import Architecture, ProtoPNet
    from timing import timed

    device = resolve_device(args.device)
    rows = []
    for spec in args.backbones:
        backbone, _, size = spec.partition(":")
        torch.manual_seed(0)
        arch = Architecture(backbone=backbone, img_size=int(size or 224), num_classes=200)
        model = ProtoPNet.build(arch).to(device).eval()
        preset = load_attack("pgd-local", steps=args.steps)
        for n in args.pairs:
            g = torch.Generator().manual_seed(0)
            images = torch.rand(n, 3, arch.img_size, arch.img_size, generator=g).to(device)
            labels = torch.randint(0, 200, (n,), generator=g).to(device)
            pairs = select_pairs(model, images, labels, None, preset)

            def attack() -> None:
                run_attack(model, images, pairs, preset, torch.Generator().manual_seed(0))

            seconds = timed(attack, args.repeats, device)
            rows.append({"backbone": backbone, "img_size": arch.img_size, "pairs": n,
                         "steps": args.steps, "device": str(device),
                         "threads": torch.get_num_threads(),
                         "seconds_per_pair_step": seconds / (n * args.steps),
                         "pair_steps_per_second": n * args.steps / seconds})
            print(f"{backbone:>12s} {arch.img_size:4d} px  {n:4d} pairs  "
                  f"{rows[-1]['seconds_per_pair_step'] * 1000:9.1f} ms / pair-step  "
                  f"{rows[-1]['pair_steps_per_second']:9.1f} pair-steps / s", flush=True)
    frame = pd.DataFrame(rows)
    if args.out:
        frame.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return frame


def ranks(args) -> None:
    cores = os.cpu_count() or 1
    base = None
    print(f"{'ranks':>5s} {'threads/rank':>12s} {'wall s':>8s} {'speed-up':>9s}")
    for n in args.nproc:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // n))}
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                       "--nproc-per-node", str(n), "-m", "protobench.run", "--attack", "pgd-local",
                       "--model", "synth-smallcnn", "--eps", "2/255,4/255,8/255,16/255",
                       "--steps", "10", "--limit", "16", "--batch-size", "4", "--quiet",
                       "--no-figures", "--out", f"{tmp}/run"]
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
            wall = time.perf_counter() - start
            units = json.loads(Path(f"{tmp}/run/run.json").read_text())["work_units"]
        base = base or wall
        print(f"{n:5d} {max(1, cores // n):12d} {wall:8.1f} {base / wall:8.2f}x   ({units} work units)")


def project(args) -> None:
    from protobench.bench.suite import load_suite

    suite = load_suite(args.suite)
    k = int(suite.attack_options.get("k", 1))
    table = pd.read_csv(args.costs)
    cost = table.sort_values("pairs").groupby("backbone")["seconds_per_pair_step"].last().to_dict()
    basis = f"measured on {table['device'].iloc[0]}"
    if args.reference:
        name, _, throughput = args.reference.partition("=")
        factor = (1 / float(throughput)) / cost[name]
        cost = {b: c * factor for b, c in cost.items()}
        basis = f"scaled so that {name} runs {float(throughput):,.0f} pair-steps/s"
    per_model = suite.images * k * len(suite.eps) * sum(suite.steps)
    total = 0.0
    print(f"suite {suite.name}: {len(suite.models)} models x {suite.images} images x top-{k} x "
          f"{len(suite.eps)} eps x {sum(suite.steps)} steps summed = {per_model:,} pair-steps per "
          f"model; costs {basis}")
    for model in suite.models:
        backbone = next((b for b in cost if b in Path(model).stem), None)
        if backbone is None:
            raise SystemExit(f"no measured cost for the backbone of {model}; measure it with costs")
        seconds = per_model * cost[backbone]
        total += seconds
        print(f"  {model}: {backbone}, {cost[backbone] * 1000:.2f} ms / pair-step, "
              f"{seconds / 3600:,.1f} h on one rank")
    for n in args.ranks:
        hours = total / n / 3600
        print(f"{n:4d} rank(s): {hours:10,.1f} h ({hours / 24:,.1f} days)")


def memory(args) -> None:
    from protobench.attacks import load_attack, select_pairs
    from protobench.attacks.pairs import tensor_fields
    from protobench.bench.suite import load_suite
    from protobench.model import Architecture, ProtoPNet

    suite = load_suite(args.suite)
    k = int(suite.attack_options.get("k", 1))
    backbone, _, size = args.backbone.partition(":")
    torch.manual_seed(0)
    arch = Architecture(backbone=backbone, img_size=int(size or 224), num_classes=200)
    model = ProtoPNet.build(arch).eval()
    images = torch.rand(2, 3, arch.img_size, arch.img_size)
    pairs = select_pairs(model, images, torch.tensor([0, 1]), None, load_attack("pgd-local", k=k))
    per_pair = {name: getattr(pairs, name)[0].nbytes for name in tensor_fields()}
    mask = pairs.mask[0].nbytes
    n = suite.images * k
    print(f"{args.backbone}, {arch.num_classes} classes x {arch.prototypes_per_class} prototypes; "
          f"suite {suite.name}: {suite.images:,} images x top-{k} = {n:,} pairs per model and attack")
    for name, size_bytes in sorted(per_pair.items(), key=lambda item: -item[1]):
        print(f"  {name:16s} {size_bytes:8,d} B per pair")
    kept = sum(per_pair.values())
    print(f"kept: {kept:,} B per pair, {kept * n / 1e9:.2f} GB per model and attack")
    print(f"a stored pixel mask would add {mask:,} B per pair, {mask * n / 1e9:.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("costs")
    c.add_argument("--backbones", nargs="+",
                   default=["smallcnn:64", "resnet18:224", "resnet34:224", "vgg19:224", "densenet121:224"])
    c.add_argument("--pairs", nargs="+", type=int, default=[1, 8])
    c.add_argument("--steps", type=int, default=2)
    c.add_argument("--repeats", type=int, default=1)
    c.add_argument("--device", default="cpu")
    c.add_argument("--out")
    r = sub.add_parser("ranks")
    r.add_argument("--nproc", nargs="+", type=int, default=[1, 2])
    p = sub.add_parser("project")
    p.add_argument("--costs", required=True)
    p.add_argument("--suite", default="cub-full")
    p.add_argument("--ranks", nargs="+", type=int, default=[1, 8, 64])
    p.add_argument("--reference", help="BACKBONE=PAIR_STEPS_PER_S measured on the target device")
    m = sub.add_parser("memory")
    m.add_argument("--suite", default="cub-full")
    m.add_argument("--backbone", default="resnet18:224")
    args = parser.parse_args()
    {"costs": costs, "ranks": ranks, "project": project, "memory": memory}[args.mode](args)


if __name__ == "__main__":
    main()
