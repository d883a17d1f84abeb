"""Realism of a trained ProtoPNet: how its explanations compare with a real one's.

An attack that moves a prototype's peak to the background has to close the
gap between the prototype's best cell and the background, so a benchmark
model whose gap is far wider than a real model's measures something else.
This module measures that gap, and holds the only figures of a real model
to set beside it: the similarities that Hoffmann et al.'s notebooks print
(:data:`PEER_FIGURES`). They are few:

- top-1 similarity: 5.09 for their CUB ResNet18 on one test image, and a
  median of 4.42 (quartiles 3.68, 5.28) for their JPEG-experiment VGG19 on
  ten compressed test images;
- no similarity of a background cell;
- one latent-distance ratio, 10.7x: on one image, the head-on-stomach
  demonstration's prototype (the image's 5th most similar, peak 2.61) and
  its similarity in the 2x2 window it attacks (0.78), the centre of a
  bird-cropped image, on the bird.

(An earlier version of this module took that prototype for the top-1 and
that window for the background: "top-1 similarity about 2.6, background
about 0.78, ratio about 10x".)

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
    d_elsewhere          min of D_j over object cells (the block holds an
                         object pixel) at least ELSEWHERE (2) cells from the
                         best cell in row or column: another region of
                         the object (not always another part: a part can
                         span more cells), as the peer's window on the bird
    elsewhere_ratio      d_elsewhere / d_best; beside the peer's 10.7x, which
                         is for a window they chose, not the best one: on
                         the same model, the best would give a lower ratio

Images with no irrelevant cell (the object touches every block) have no
d_irrelevant; they are counted and left out of those two distributions.
Images without an object cell that far from the best cell are left out of
elsewhere_ratio's.

PIP-Net and TesNet have no latent distance (their maps are softmax
presences and projections): their similarities are those, and their
distance ratios are left out (empty).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch

from protobench.attacks.regions import block_fraction, cells_away

RATIO_FLOOR = 1e-8  # d_best of a training image right after push can be 0


@dataclass(frozen=True)
class PeerFigure:
    """One similarity printed in a notebook of Hoffmann et al.'s code (:data:`PEER_SOURCE`).

    ``rank``: the prototype's rank on the image by its max similarity (1 =
    top-1); ``cells``: where the similarity is the max, ``"all"`` (the peak)
    or a window of the 7x7 grid as (row, column) corners.
    """

    notebook: str
    model: str
    image: str
    prototype: int
    rank: int
    cells: str
    similarity: float


PEER_SOURCE = "fanconic/this-does-not-look-like-that@77c0e99d61db882fd8c7bb0eb2ddb4e46179556b"
PEER_RESNET18 = "ResNet18 ProtoPNet on CUB (resnet18/003/40push0.7437.pth)"
PEER_VGG19_JPEG = "VGG19 ProtoPNet of the JPEG experiment on CUB (vgg19/002/10_19push0.8108.pth)"
_JPEG_IMAGE = "test class {} (0-based), the second file listed, JPEG quality 20"
PEER_FIGURES = (
    PeerFigure("local_analysis_attack3.ipynb", PEER_RESNET18, "016.Painted_Bunting/Painted_Bunting_0004_16641",
               150, 1, "all", 5.093625545501709),
    PeerFigure("local_analysis_attack3.ipynb", PEER_RESNET18, "016.Painted_Bunting/Painted_Bunting_0004_16641",
               152, 2, "all", 4.846137523651123),
    PeerFigure("local_analysis_attack1.ipynb", PEER_RESNET18, "117.Clay_colored_Sparrow/Clay_Colored_Sparrow_0042_797243",
               1165, 5, "all", 2.613228),
    PeerFigure("local_analysis_attack1.ipynb", PEER_RESNET18, "117.Clay_colored_Sparrow/Clay_Colored_Sparrow_0042_797243",
               1165, 5, "(3, 3)-(4, 4)", 0.782304),
    *(PeerFigure("JPEG_experiment_analysis.ipynb", PEER_VGG19_JPEG, _JPEG_IMAGE.format(cls), proto, 1, "all", sim)
      for cls, proto, sim in ((1, 16, 4.2432146072387695), (21, 216, 4.71732759475708),
                              (41, 419, 4.601229667663574), (61, 719, 3.1407055854797363),
                              (81, 811, 7.223883152008057), (101, 392, 3.6165249347686768),
                              (121, 1211, 5.463100433349609), (141, 1451, 3.5181784629821777),
                              (161, 1615, 5.468467712402344), (181, 1810, 3.875910758972168))),
)


def log_distance(similarity: float, epsilon: float = 1e-4) -> float:
    """The latent squared distance whose log activation is ``similarity`` (the inverse of
    :func:`log_similarity`)."""
    e = math.exp(similarity)
    return (1 - epsilon * e) / (e - 1)


def peer_top1(model: str) -> torch.Tensor:
    """The top-1 similarities Hoffmann et al.'s notebooks print for ``model``, one per image."""
    return torch.tensor([f.similarity for f in PEER_FIGURES
                         if f.model == model and f.rank == 1 and f.cells == "all"], dtype=torch.float64)


def peer_window_ratio() -> float:
    """d(window) / d(peak) of the head-on-stomach demonstration's prototype: the one latent
    distance ratio the peer's notebooks allow (its window lies on the bird, not the background)."""
    window, = (f for f in PEER_FIGURES if f.cells != "all")
    peak, = (f for f in PEER_FIGURES
             if f.cells == "all" and (f.image, f.prototype) == (window.image, window.prototype))
    return log_distance(window.similarity) / log_distance(peak.similarity)


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
    elsewhere_ratio: torch.Tensor       # (N,), NaN without an object cell that far


@dataclass(frozen=True)
class RealismReport:
    images: int
    without_irrelevant_cell: int
    top1_similarity: Spread
    irrelevant_similarity: Spread
    distance_ratio: Spread
    elsewhere_ratio: Spread

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
    d_irr = _min_over(d_map, irrelevant)
    d_else = _min_over(d_map, cells_away(d_map.argmin(dim=1), (h, w)).flatten(1) & ~irrelevant)
    floor = d_best.clamp_min(RATIO_FLOOR)
    return RealismPerImage(proto, similarity(d_best), d_best, d_irr, similarity(d_irr),
                           d_irr / floor, d_else / floor)


def _min_over(d_map: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Per image, the least of ``d_map`` (N, h*w) over ``cells`` (N, h*w) bool; NaN where none."""
    least = torch.where(cells, d_map, torch.full_like(d_map, float("inf"))).min(dim=1).values
    return torch.where(cells.any(dim=1), least, torch.full_like(least, float("nan")))


def summarize(per_image: RealismPerImage) -> RealismReport:
    """Median and quartiles over images; images without an irrelevant cell left out."""
    has = ~torch.isnan(per_image.d_irrelevant)
    return RealismReport(
        images=len(has), without_irrelevant_cell=int((~has).sum()),
        top1_similarity=Spread.of(per_image.top1_similarity),
        irrelevant_similarity=Spread.of(per_image.irrelevant_similarity[has]),
        distance_ratio=Spread.of(per_image.distance_ratio[has]),
        elsewhere_ratio=Spread.of(per_image.elsewhere_ratio[~torch.isnan(per_image.elsewhere_ratio)]))


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
    net = model.net
    for start in range(0, len(data), batch_size):
        idx = range(start, min(start + batch_size, len(data)))
        images = torch.stack([data[i][0] for i in idx]).to(model.device)
        relevance = torch.stack([data.relevance_mask(i) for i in idx]).to(model.device)
        distances = net.prototype_distances(model.normalize(images))
        parts.append(top1_realism(distances, relevance, net.distance_2_similarity))
    merged = RealismPerImage(*(torch.cat([getattr(p, f).cpu() for p in parts])
                               for f in RealismPerImage.__dataclass_fields__))
    report = summarize(merged)
    if not model.rules.has_distances:  # PIP-Net, TesNet: no latent distance
        report = replace(report, distance_ratio=Spread.of(torch.zeros(0)),
                         elsewhere_ratio=Spread.of(torch.zeros(0)))
    return report
