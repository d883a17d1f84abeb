"""Realism of a trained ProtoPNet: how its explanations compare with a real one's.

Hoffmann et al. (2021) attack a ResNet18 ProtoPNet trained on CUB-200-2011.
On its images the top-1 prototype's clean similarity is about 2.6 (log
activation log((d+1)/(d+1e-4)), latent squared distance d about 0.08), and
its similarity on the background about 0.78 (d about 0.85): the best
background cell is about 10x farther from the prototype than the best cell.
An attack that moves the peak to the background has to close that gap, so a
benchmark model whose gap is 100x or 3000x measures something else.

For each image, with the top-1 prototype j (highest max similarity over all
prototypes, i.e. lowest min distance) and its latent squared distance map
D_j (h, w):

    top1_similarity      max S_j = the activation of min D_j
    d_best               min over all cells of D_j
    d_irrelevant         min of D_j over the irrelevant cells: cells whose
                         pixel block holds no object pixel (cell (r, c) owns
                         the pixels with floor(y * h / H) = r, as in
                         :mod:`protobench.attacks.regions`)
    irrelevant_similarity the activation of d_irrelevant
    distance_ratio       d_irrelevant / d_best (d_best clamped at 1e-8)

Images with no irrelevant cell (the object touches every block) have no
d_irrelevant; they are counted and left out of those two distributions.

PIP-Net and TesNet have no latent distance (their maps are softmax
presences and projections): their similarities are those, and their
distance ratio is left out (empty).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from protobench.attacks.regions import block_fraction

# Hoffmann et al. (2021), ResNet18 ProtoPNet on CUB-200-2011: the reference figures.
CUB_TOP1_SIMILARITY, CUB_IRRELEVANT_SIMILARITY, CUB_DISTANCE_RATIO = 2.6, 0.78, 10.0
RATIO_FLOOR = 1e-8  # d_best of a training image right after push can be 0


@dataclass(frozen=True)
class Spread:
    """Median and quartiles of a sample (NaN when empty)."""

    q25: float
    median: float
    q75: float
    n: int

    @classmethod
    def of(cls, values: torch.Tensor) -> "Spread":
        values = values.double().flatten()
        if values.numel() == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        q = torch.quantile(values, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
        return cls(float(q[0]), float(q[1]), float(q[2]), values.numel())


@dataclass(frozen=True)
class RealismPerImage:
    """Per image (N,): the top-1 prototype and its distances; NaN where no irrelevant cell."""

    prototype: torch.Tensor             # long (N,)
    top1_similarity: torch.Tensor       # (N,)
    d_best: torch.Tensor                # (N,)
    d_irrelevant: torch.Tensor          # (N,), NaN without an irrelevant cell
    irrelevant_similarity: torch.Tensor  # (N,), NaN without an irrelevant cell
    distance_ratio: torch.Tensor        # (N,), NaN without an irrelevant cell


@dataclass(frozen=True)
class RealismReport:
    images: int
    without_irrelevant_cell: int
    top1_similarity: Spread
    irrelevant_similarity: Spread
    distance_ratio: Spread

    def to_dict(self) -> dict:
        """Plain data for JSON: NaN (an empty distribution) becomes None."""
        def clean(value):
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return None if isinstance(value, float) and value != value else value
        return clean(asdict(self))


def log_similarity(distances: torch.Tensor, epsilon: float = 1e-4) -> torch.Tensor:
    """ProtoPNet's log activation log((d + 1) / (d + epsilon))."""
    return torch.log((distances + 1) / (distances + epsilon))


def top1_realism(distances: torch.Tensor, relevance: torch.Tensor,
                 similarity=log_similarity) -> RealismPerImage:
    """The realism figures of every image (module docstring).

    distances: (N, P, h, w) latent squared distances of every prototype at
    every cell; relevance: (N, H, W) bool, True on the object; similarity:
    the model's activation (distance -> similarity).
    """
    n, p, h, w = distances.shape
    flat = distances.flatten(2)                                   # (N, P, h*w)
    min_per_proto = flat.min(dim=2).values                        # (N, P)
    proto = min_per_proto.argmin(dim=1)                           # (N,)
    rows = torch.arange(n, device=distances.device)
    d_map = flat[rows, proto]                                     # (N, h*w)
    d_best = d_map.min(dim=1).values
    irrelevant = (block_fraction(relevance, (h, w)) <= 0).flatten(1)  # (N, h*w)
    d_irr = torch.where(irrelevant, d_map, torch.full_like(d_map, float("inf"))).min(dim=1).values
    d_irr = torch.where(irrelevant.any(dim=1), d_irr, torch.full_like(d_irr, float("nan")))
    return RealismPerImage(proto, similarity(d_best), d_best, d_irr, similarity(d_irr),
                           d_irr / d_best.clamp_min(RATIO_FLOOR))


def summarize(per_image: RealismPerImage) -> RealismReport:
    """Median and quartiles over images; images without an irrelevant cell left out."""
    has = ~torch.isnan(per_image.d_irrelevant)
    return RealismReport(
        images=len(has), without_irrelevant_cell=int((~has).sum()),
        top1_similarity=Spread.of(per_image.top1_similarity),
        irrelevant_similarity=Spread.of(per_image.irrelevant_similarity[has]),
        distance_ratio=Spread.of(per_image.distance_ratio[has]))


@torch.no_grad()
def model_realism(model, data, batch_size: int = 100) -> RealismReport:
    """The realism report of ``model`` (a :class:`ProtoPNet`) on ``data`` (a data set with masks).

    ``data[i]`` gives (image in [0, 1], label) and ``data.relevance_mask(i)``
    the object mask (H, W) bool.
    """
    from protobench.errors import ProtobenchError

    if len(data) == 0:
        raise ProtobenchError("the realism report needs at least one image")
    if not hasattr(data, "relevance_mask") or data.relevance_mask(0) is None:
        raise ProtobenchError("the realism report needs object masks (e.g. synth, or cub200 "
                              "with segmentations); this data set has none")
    model.eval()
    parts = []
    ppnet = model.ppnet
    for start in range(0, len(data), batch_size):
        idx = range(start, min(start + batch_size, len(data)))
        images = torch.stack([data[i][0] for i in idx]).to(model.device)
        relevance = torch.stack([data.relevance_mask(i) for i in idx]).to(model.device)
        distances = ppnet.prototype_distances(model.normalize(images))
        parts.append(top1_realism(distances, relevance, ppnet.distance_2_similarity))
    merged = RealismPerImage(*(torch.cat([getattr(p, f).cpu() for p in parts])
                               for f in RealismPerImage.__dataclass_fields__))
    report = summarize(merged)
    if not getattr(ppnet, "has_distances", True):  # PIP-Net, TesNet: no latent distance
        report = replace(report, distance_ratio=Spread.of(torch.zeros(0)))
    return report
