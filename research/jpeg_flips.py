"""Which test images of the compressed classes a JPEG-experiment model gets right only compressed.

    python research/jpeg_flips.py synth-jpeg-30
    python research/jpeg_flips.py synth-jpeg-40x30

A model that learnt the compression as a class cue recognises such an image
compressed and misses it clean (Hoffmann et al. 2021). Prints how many of the
compressed classes' test images flip each way, and the first ones that flip
to wrong when clean: the candidates for ``protobench.explain --jpeg``'s figure.
"""

from __future__ import annotations

import argparse
import sys

import torch

import protobench
from protobench.errors import ProtobenchError
from protobench.training import model_data_source
from protobench.evaluation.quality import jpeg_correct


def flips(model) -> dict[str, object]:
    """Right compressed / wrong clean, and the reverse, over the compressed classes' test images."""
    measured = jpeg_correct(model, model_data_source(model))
    if measured is None:
        raise ProtobenchError(f"{model.meta.name} compresses no class: not a JPEG-experiment model")
    _, members, correct = measured
    only_compressed = torch.nonzero(members & correct["compressed"] & ~correct["clean"]).flatten()
    only_clean = torch.nonzero(members & ~correct["compressed"] & correct["clean"]).flatten()
    return {"images": int(members.sum()), "only_compressed": only_compressed.tolist(),
            "only_clean": only_clean.tolist()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a JPEG-experiment checkpoint (name or path)")
    parser.add_argument("--first", type=int, default=10, help="how many image indices to list")
    args = parser.parse_args(argv)
    try:
        found = flips(protobench.load(args.model))
    except ProtobenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.model}: of the {found['images']} test images of the compressed classes, "
          f"{len(found['only_compressed'])} are right compressed and wrong clean, "
          f"{len(found['only_clean'])} the reverse")
    print(f"first right compressed, wrong clean: {found['only_compressed'][:args.first]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
