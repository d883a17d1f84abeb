"""Where the prototypes' sources lie that are not on the object: at its outline, on the
background, on a distractor?

    python research/source_offsets.py synth-smallcnn synth-protopool synth-pipnet synth-tesnet

"On the object" (``protobench.evaluate``'s "prototypes on the object") asks whether
a source's high-activation box centre is an object pixel. For every source that is
not, this measures the distance from that centre to the nearest object pixel, in
pixels and in latent cells (the backbone's stride), and, on synth, whether the
centre lies on a distractor: a loose copy of a class part drawn on the background.
The distractors are found by drawing the same push images with ``distractors = 0``
(every image draws its distractors from a stream of their own, so nothing else
changes) and keeping the pixels that differ, grown by 2 px for the blur.

Prints one markdown row per model.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import torch
import torch.nn.functional as F

import protobench
from protobench.errors import ProtobenchError
from protobench.training import model_data_source
from protobench.evaluation.quality import box_centre, source_distances

CHANGED = 0.02  # a pixel differs from its distractor-free drawing by more than this
GROW = 2        # px: the distractor mask is grown by this, for the blur of the photograph


def distractor_masks(source, push_set, grow: int = GROW) -> list[torch.Tensor] | None:
    """Bool (H, W) per push image, True on (or within ``grow`` px of) a distractor; None
    unless the data are synth."""
    if source.dataset != "synth":
        return None
    plain = dataclasses.replace(source, options={**source.options, "distractors": 0}).load("push")
    masks = []
    for i in range(len(push_set)):
        changed = (push_set[i][0] - plain[i][0]).abs().amax(dim=0) > CHANGED
        grown = F.max_pool2d(changed[None, None].float(), 2 * grow + 1, stride=1, padding=grow)
        masks.append(grown[0, 0].bool())
    return masks


def offsets(model) -> dict[str, object]:
    """Counts of the model's sources: on the object, off it within one latent cell, farther,
    and (synth) off it on a distractor; with the off-object distances in pixels."""
    records = model.meta.push_records
    source = model_data_source(model)
    if not records or source is None:
        raise ProtobenchError(f"{model.meta.name or 'the model'} has no prototype sources "
                              "with a recipe's data to look them up in")
    push = source.load("push")
    distances = source_distances(records, push)
    if distances is None:
        raise ProtobenchError(f"{source.dataset} has no object masks: no source is on or off the object")
    cell = float(model.net.proto_layer_rf_info[1])
    off = [(r, d) for r, d in zip(records, distances) if d > 0]
    decoys = distractor_masks(source, push)
    return {
        "sources": len(records),
        "on_object": len(records) - len(off),
        "within_cell": sum(d <= cell for _, d in off),
        "farther": sum(d > cell for _, d in off),
        "on_distractor": None if decoys is None else sum(bool(decoys[r["image"]][box_centre(r)])
                                                         for r, _ in off),
        "cell": cell,
        "off_distances": sorted(round(d, 1) for _, d in off),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="checkpoints (names or paths) with prototype sources")
    args = parser.parse_args(argv)
    print("| model | sources | on the object | off, within one cell | off, farther | off, on a distractor "
          "| off-object distances (px) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        try:
            found = offsets(protobench.load(name))
        except ProtobenchError as err:
            print(f"error: {name}: {err}", file=sys.stderr)
            return 2
        n = found["sources"]
        decoy = "no distractors (not synth)" if found["on_distractor"] is None else found["on_distractor"]
        distances = ", ".join(f"{d:g}" for d in found["off_distances"])
        print(f"| {name} | {n} | {found['on_object']} ({found['on_object'] / n:.0%}) "
              f"| {found['within_cell']} (cell {found['cell']:g} px) | {found['farther']} | {decoy} "
              f"| {distances} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
