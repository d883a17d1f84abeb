"""python -m protobench.evaluate --model NAME_OR_PATH: test accuracy of a ProtoPNet,
the share of its prototypes on the object, and its realism (docs/metrics.md):
the clean top-1 similarity and d(best irrelevant cell) / d(best cell), as
median and quartiles, beside Hoffmann et al.'s CUB ResNet18 figures."""

from __future__ import annotations

import argparse
import json

from protobench.cli import check_names, command
from protobench.errors import cli_entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model name (models/NAME.pt) or checkpoint path")
    parser.add_argument("--dataset", help="synth, cub200 or folder (default: the model's recipe)")
    parser.add_argument("--data-root", help="folder of cub200 / folder data sets")
    parser.add_argument("--split", default="test", help="train, push or test (default: test); 'all' reads a plain folder of "
                             "class subfolders whole")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--card", nargs="?", const="", metavar="FILE",
                        help="also write the model card, a Markdown page of the checkpoint and "
                             "these numbers (default FILE: models/cards/NAME.md); needs the "
                             "model's own test split")


@cli_entry
def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    check_names(models=[args.model])
    if args.card is not None and (args.dataset or args.data_root or args.split != "test"):
        parser.error("--card describes the model on its own test split: leave out --dataset, "
                     "--data-root and --split")

    from protobench.workflows import evaluate_model, write_model_card

    if args.card is not None:
        written_by = f"protobench evaluate --model {args.model} --card" + (f" {args.card}" if args.card else "")
        report, card = write_model_card(args.model, args.card or None, args.device, written_by)
        print(f"wrote {card}")
    else:
        report = evaluate_model(args.model, args.dataset, args.data_root, args.split, args.device)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(f"{report.model}: accuracy {report.accuracy:.2%} on {report.images} "
          f"{report.dataset} {args.split} images")
    if report.prototypes_on_object is not None:
        print(f"prototypes whose high-activation box centre lies on the object: "
              f"{report.prototypes_on_object:.0%}")
    if report.realism is None:
        print("realism: no object masks in this data set")
    else:
        print(_realism_text(report.realism))
    if report.noise_stability is not None:
        n = report.noise_stability
        print(f"noise control ({n.eps * 255:.0f}/255 uniform noise in the top-1 prototype's high-activation "
              f"box, first {n.images} images): peak stays in R {n.peak_stays_in_r:.0%} "
              f"[{n.peak_stays_in_r_ci[0]:.0%}, {n.peak_stays_in_r_ci[1]:.0%}], prediction kept "
              f"{n.prediction_kept:.0%} [{n.prediction_kept_ci[0]:.0%}, {n.prediction_kept_ci[1]:.0%}]")
    if report.latent_saturation is not None:
        print(f"latent saturation (mean |z - 0.5| of the latent cells, first images; 0.5: all at 0 or 1): "
              f"{report.latent_saturation:.2f}")
    if report.jpeg is not None:
        j = report.jpeg
        print(f"JPEG experiment (classes {j['classes']} compressed at quality {j['quality']}): "
              "test accuracy on compressed / clean images")
        for group in ("compressed_classes", "other_classes"):
            a = j[group]
            print(f"  {group.replace('_', ' '):<20} {a['compressed']:.1%} / {a['clean']:.1%}")
        print(f"  gap on the compressed classes: {j['gap']:+.1%} (Hoffmann et al., VGG19 on CUB: "
              "81.08% / 49.60%)")
    return 0


main = command('evaluate', __doc__, add_arguments, execute)


def _realism_text(r) -> str:
    from protobench.attacks.regions import ELSEWHERE
    from protobench.evaluation.realism import (PEER_RESNET18, PEER_VGG19_JPEG, Spread, peer_top1,
                                    peer_window_ratio)

    def spread(s, fmt):
        return f"median {s.median:{fmt}} [quartiles {s.q25:{fmt}}, {s.q75:{fmt}}]"
    resnet18, vgg19 = peer_top1(PEER_RESNET18), Spread.of(peer_top1(PEER_VGG19_JPEG))
    lines = [f"realism on {r.images} images (top-1 prototype of each):",
             f"  clean top-1 similarity            {spread(r.top1_similarity, '.2f')}",
             f"      Hoffmann et al. on CUB: ResNet18 {float(resnet18[0]):.2f} ({len(resnet18)} image); "
             f"JPEG-experiment VGG19 {spread(vgg19, '.2f')} ({vgg19.n} images)",
             f"  similarity, best irrelevant cell  {spread(r.irrelevant_similarity, '.2f')}",
             "      Hoffmann et al.: none printed",
             (f"  d(best irrelevant) / d(best)      {spread(r.distance_ratio, '.1f')}" if r.distance_ratio.n else
              "  d(best irrelevant) / d(best)      none: the model has no latent distance "
              "(PIP-Net, TesNet)"),
             "      Hoffmann et al.: none printed (their one ratio is to a window on the bird: below)",
             (f"  d(object {ELSEWHERE}+ cells away) / d(best) {spread(r.elsewhere_ratio, '.1f')}"
              if r.elsewhere_ratio.n else
              f"  d(object {ELSEWHERE}+ cells away) / d(best) none: no latent distance, or no such cell"),
             f"      Hoffmann et al.: {peer_window_ratio():.1f}x to the 2x2 window they attack on the bird "
             "(1 image, the 5th prototype; the best window would be nearer)"]
    if r.without_irrelevant_cell:
        lines.append(f"  {r.without_irrelevant_cell} image(s) without an irrelevant cell left out")
    return "\n".join(lines)
