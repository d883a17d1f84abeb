"""Which objective and method make an attack strongest, on images the committed results never use.

Attacks the same (image, prototype) pairs with each variant of a preset and
prints, per variant, where the prototype's peak lies afterwards (the rates
of docs/metrics.md), the prediction kept, and the time:

    python research/objectives.py --model synth-resnet18 [--first-image 100 --images 48]
        pgd-local pgd-local:objective=displace,method=pgd pgd-local:temperature=0.25 noise

A variant is a preset name or TOML path, optionally followed by ':' and
comma-separated overrides of its fields. Last comes, for each group of
attack variants that share a threat model and a target (norm, eps, mask,
target rule and size; noise excluded), the best per pair: the share of
pairs whose peak at least one of them put in the target, which an ensemble
keeping each pair's best image by that criterion would reach, and how many
pairs each variant alone wins that no other does.

The default images (100 to 147 of the test split) are past the 32 that the
default and headline suites use, so a choice made here is not tuned to the
committed results.

``--ascend similarity`` makes the objectives ascend the similarity maps
themselves instead of the model's attack maps (which differ for PIP-Net
only: the log-odds of its softmax presence), to measure what the log-odds
buy:

    python research/objectives.py --model synth-pipnet --ascend similarity \
        pgd-local pgd-local:eps=16/255,steps=100 pgd-local:eps=32/255,steps=100
"""

from __future__ import annotations

import argparse
import time

import torch

import protobench
from protobench.attacks import load_attack, measure, run_attack, select_pairs
from protobench.metrics import rate_with_interval
from protobench.training import model_split

RATES = [("peak_moved", "leaves R"), ("out_of_box", "leaves box"),
         ("peak_irrelevant", "irrelevant cell"), ("peak_in_target", "in target"),
         ("target_above_clean_peak", "target > clean peak"), ("pred_kept", "pred kept")]


def parse_variant(text: str):
    name, _, rest = text.partition(":")
    overrides = dict(item.split("=", 1) for item in rest.split(",") if item)
    return load_attack(name, **overrides)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", help="preset[:key=value,...]")
    parser.add_argument("--model", default="synth-resnet18")
    parser.add_argument("--first-image", type=int, default=100)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--ascend", choices=["attack-maps", "similarity"], default="attack-maps",
                        help="what the objectives ascend: the model's attack maps (default) or "
                             "its similarity maps")
    args = parser.parse_args()

    model = protobench.load(args.model, device=args.device)  # resolves "auto"; TF32 off on CUDA
    if args.ascend == "similarity":
        model.attack_maps = model.similarity_maps  # shadows the method on this instance
    _, data = model_split(model, "test", None, None, args.model)
    indices = range(args.first_image, min(args.first_image + args.images, len(data)))
    images = torch.stack([data[i][0] for i in indices]).to(model.device)
    labels = torch.tensor([data[i][1] for i in indices], device=model.device)
    relevance = [data.relevance_mask(i) for i in indices]
    print(f"{args.model}, test images {indices.start}-{indices.stop - 1}, seed {args.seed}, "
          f"objectives ascend its {args.ascend}")
    print("| variant | " + " | ".join(h for _, h in RATES) + " | seconds |")
    print("|---" * (len(RATES) + 2) + "|")
    groups: dict[tuple, dict[str, torch.Tensor]] = {}  # threat model -> variant -> (pairs,) in target
    for text in args.variants:
        preset = parse_variant(text)
        pairs = select_pairs(model, images, labels, relevance, preset)
        start = time.perf_counter()
        result = run_attack(model, images, pairs, preset, torch.Generator().manual_seed(args.seed))[0]
        seconds = time.perf_counter() - start
        metrics, _ = measure(model, images, pairs, result.x_adv)
        rates = [f"{100 * getattr(metrics, m).float().mean().item():.0f}%" for m, _ in RATES]
        print(f"| {text} | " + " | ".join(rates) + f" | {seconds:.0f} |", flush=True)
        if preset.kind != "noise":
            threat = (preset.norm, preset.eps, preset.mask, preset.target, preset.target_size)
            groups.setdefault(threat, {})[text] = metrics.peak_in_target.bool()
    for in_target in groups.values():
        if len(in_target) > 1 and len({len(v) for v in in_target.values()}) == 1:
            print_best_per_pair(in_target)


def print_best_per_pair(in_target: dict[str, torch.Tensor]) -> None:
    """Per pair, any variant's peak in the target; and what each variant alone wins."""
    won = torch.stack(list(in_target.values()))  # (variants, pairs)
    n, hits = won.shape[1], int(won.any(dim=0).sum())
    print(f"\nper pair, the best of the {len(won)} attack variants: peak in the target for "
          f"{hits} of {n} pairs, {rate_with_interval(hits, n)}")
    for i, text in enumerate(in_target):
        others = torch.cat([won[:i], won[i + 1:]]).any(dim=0)
        print(f"  {text}: {int(won[i].sum())} pairs, {int((won[i] & ~others).sum())} that no other "
              "variant wins")


if __name__ == "__main__":
    main()
