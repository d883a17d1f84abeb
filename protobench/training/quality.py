"""Is a trained ProtoPNet's explanation worth attacking?

A prototype "means something" when its source patch lies on the object: the
centre of its high-activation box on its source image is inside the object
mask. Data sets without masks give no answer (None).
"""

from __future__ import annotations

from typing import Any, Sequence

from torch.utils.data import Dataset


def prototypes_on_object(push_records: Sequence[dict[str, Any]], push_set: Dataset) -> float | None:
    """Fraction of prototypes whose high-activation box centre lies on the object."""
    if not push_records:
        return None
    hits = 0
    for record in push_records:
        mask = push_set.relevance_mask(record["image"])
        if mask is None:
            return None
        y0, y1, x0, x1 = record["high_activation_box"]
        hits += bool(mask[(y0 + y1 - 1) // 2, (x0 + x1 - 1) // 2])
    return hits / len(push_records)
