"""Is a trained ProtoPNet's explanation worth attacking?

A prototype "means something" when its source patch lies on the object: the
centre of its high-activation box on its source image is inside the object
mask. Data sets without masks give no answer (None). Also the JPEG experiment
(Hoffmann et al. 2021) and ``accuracy_report``, the accuracy and JPEG
experiment that evaluate, the runner's model reports and the cards share.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch.utils.data import Dataset


def box_centre(record: dict[str, Any]) -> tuple[int, int]:
    """(y, x) pixel at the centre of a push record's high-activation box."""
    y0, y1, x0, x1 = record["high_activation_box"]
    return (y0 + y1 - 1) // 2, (x0 + x1 - 1) // 2


def prototypes_on_object(push_records: Sequence[dict[str, Any]], push_set: Dataset) -> float | None:
    """Fraction of prototypes whose high-activation box centre lies on the object."""
    if not push_records:
        return None
    hits = 0
    for record in push_records:
        mask = push_set.relevance_mask(record["image"])
        if mask is None:
            return None
        hits += bool(mask[box_centre(record)])
    return hits / len(push_records)


def source_distances(push_records: Sequence[dict[str, Any]], push_set: Dataset) -> list[float] | None:
    """Per prototype, how far its source lies from the object: the Euclidean distance in
    pixels from its high-activation box centre to the nearest object pixel (0 on the
    object; ``prototypes_on_object`` counts the zeros). None without masks."""
    import cv2
    import numpy as np

    distances = []
    for record in push_records:
        mask = push_set.relevance_mask(record["image"])
        if mask is None:
            return None
        outside = (~mask.bool()).numpy().astype(np.uint8)
        if outside.all():  # no object in the image: no distance to it
            distances.append(float("inf"))
            continue
        distances.append(float(cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
                               [box_centre(record)]))
    return distances


def jpeg_correct(model, source) -> tuple[list[int], Any, dict[str, Any]] | None:
    """Per test image, whether ``model`` classifies it right compressed and clean.

    ``source``: the model's DataSource; None unless its options compress classes
    (``jpeg_classes``). Returns (the compressed classes, a bool mask of the test
    images in them, {"compressed": bool (N,), "clean": bool (N,)}).
    """
    import torch

    from protobench.data.jpeg_experiment import parse_jpeg_classes
    from protobench.evaluation.accuracy import correct_predictions

    if source is None or source.options.get("jpeg_classes") is None:
        return None
    compressed_split = source.load("test")
    clean_split = source.without_jpeg().load("test")
    classes = parse_jpeg_classes(source.options["jpeg_classes"], len(clean_split.classes))
    in_group = torch.isin(clean_split.labels, torch.tensor(classes))
    correct = {name: correct_predictions(model, split)
               for name, split in (("compressed", compressed_split), ("clean", clean_split))}
    return list(classes), in_group, correct


def jpeg_experiment(model, source) -> dict[str, Any] | None:
    """Hoffmann et al.'s JPEG experiment, measured as in the paper: test accuracy per class
    group (the compressed classes, the others) on compressed and on clean test images.

    ``source``: the model's DataSource; None unless its options compress classes
    (``jpeg_classes``). A model that learnt the artefacts as a class cue
    loses accuracy on clean images of the compressed classes.
    """
    measured = jpeg_correct(model, source)
    if measured is None:
        return None
    classes, in_group, correct = measured
    out: dict[str, Any] = {"classes": classes, "quality": int(source.options.get("jpeg_quality", 20))}
    for group, members in (("compressed_classes", in_group), ("other_classes", ~in_group)):
        out[group] = {name: round(float(c[members].float().mean()), 4) for name, c in correct.items()}
    group = out["compressed_classes"]
    out["gap"] = round(group["compressed"] - group["clean"], 4)  # the paper's headline difference
    return out


def accuracy_report(model, source, data: Dataset | None = None, split: str = "test") -> dict[str, Any]:
    """{"accuracy", "images", "jpeg"}: the accuracy on ``split`` of ``source`` (``data``, when
    already loaded) and, on the test split, the JPEG experiment's accuracies (None for a data
    set without JPEG classes, or another split)."""
    from protobench.evaluation.accuracy import accuracy

    data = source.load(split) if data is None else data
    return {"accuracy": accuracy(model, data), "images": len(data),
            "jpeg": jpeg_experiment(model, source) if split == "test" else None}
