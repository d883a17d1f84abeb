"""Cell and pixel regions of (image, prototype) pairs, batched over N pairs.

A prototype's similarity map S_j has h x w *cells*; the image has H x W
*pixels*. Cell (r, c) owns the pixel *block* of the pixels (y, x) with
floor(y * h / H) = r and floor(x * w / W) = c (nearest-neighbour upsampling;
8 x 8 px blocks for a 64 px image and an 8 x 8 grid), centred where bicubic
upsampling with ``align_corners=False`` puts the cell's value, i.e. where
the high-activation box (ProtoPNet, Chen et al. 2019) sees it.

Cell regions, bool (N, h, w):

- R, ``high_activation_cells``: the cells at least half covered by the
  prototype's high-activation region on the clean image (the 95th-percentile
  pixels of the upsampled map, whose bounding box is the high-activation
  box), plus the argmax cell of S_j, so that R is never empty and always
  holds the peak (the patch the prototype "looks at", Hoffmann et al. 2021).
- I, ``irrelevant_cells``: from a ground-truth relevance mask (True on the
  object), the cells whose block holds at most ``threshold`` (a fraction)
  object pixels; without a mask, every cell outside R.
- T, the cells an attack moves the similarity to (``most_similar_window``
  and ``farthest_window`` pick a square window of irrelevant cells, or, for
  the target rule ``object-elsewhere``, of object cells outside R at least
  ``ELSEWHERE`` cells from the peak, ``cells_away``).

Pixel masks M (where an attack may change the image), bool (N, 1, H, W):
``high-activation`` (the box), ``target`` (the blocks of given cells),
``outside`` (all but the box grown by a margin, Sacha et al. 2024) and
``full``. An empty mask is a :class:`ProtobenchError`.
"""

from __future__ import annotations

from typing import Sequence

import torch

from protobench.errors import ProtobenchError
from protobench.model.receptive_field import box_mask, high_activation_mask

MASKS = ("high-activation", "target", "outside", "full")


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def cell_of_pixel(n_cells: int, n_pixels: int, device: torch.device | None = None) -> torch.Tensor:
    """The cell index of every pixel along one axis: floor(y * h / H), (H,) long."""
    return torch.arange(n_pixels, device=device) * n_cells // n_pixels


def cells_to_pixels(cells: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Pixel mask (N, H, W) of the blocks of the given cells (N, h, w) bool."""
    (H, W), (h, w) = _size(size), cells.shape[-2:]
    rows = cell_of_pixel(h, H, cells.device)
    cols = cell_of_pixel(w, W, cells.device)
    return cells[:, rows][:, :, cols]


def block_fraction(pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Fraction of True pixels in each cell's block: (N, H, W) bool -> (N, h, w) float."""
    (H, W), (h, w) = pixels.shape[-2:], grid
    rows = torch.nn.functional.one_hot(cell_of_pixel(h, H, pixels.device), h).float()  # (H, h)
    cols = torch.nn.functional.one_hot(cell_of_pixel(w, W, pixels.device), w).float()  # (W, w)
    counts = torch.einsum("nyx,yr,xc->nrc", pixels.float(), rows, cols)
    return counts / torch.outer(rows.sum(0), cols.sum(0))


def cells_in_box(boxes: torch.Tensor, grid: tuple[int, int],
                 size: int | tuple[int, int]) -> torch.Tensor:
    """Cells whose centre lies inside each pixel box.

    Cell (r, c)'s centre is ((r + 0.5) H / h, (c + 0.5) W / w): where the
    upsampling that gives the high-activation box (cv2's bicubic resize)
    places the cell's value. Where h does not divide H this differs from the
    centre of the cell's nearest-neighbour block (``cell_of_pixel``) by
    under a pixel. The box covers the pixels y0..y1-1, the span [y0, y1],
    and a centre on its edge is inside: so every cell of R (at least half
    covered by the region the box bounds) is inside its box, and "the peak
    leaves the box" implies "the peak leaves R". boxes: (N, 4) long
    (y0, y1, x0, x1), end-exclusive. Returns (N, h, w) bool.
    """
    (H, W), (h, w) = _size(size), grid
    cy = (torch.arange(h, device=boxes.device) + 0.5) * H / h
    cx = (torch.arange(w, device=boxes.device) + 0.5) * W / w
    b = boxes.view(-1, 4, 1).to(cy.dtype)
    in_y = (cy >= b[:, 0]) & (cy <= b[:, 1])  # (N, h); a centre on an edge is inside
    in_x = (cx >= b[:, 2]) & (cx <= b[:, 3])  # (N, w)
    return in_y[:, :, None] & in_x[:, None, :]


ELSEWHERE = 2  # cells from the peak, in row or column, for a cell to lie in another region


def cells_away(peak: torch.Tensor, grid: tuple[int, int], distance: int = ELSEWHERE) -> torch.Tensor:
    """The cells at least ``distance`` cells from the peak cell in row or column (Chebyshev).

    peak: (N,) the peak cell's flat index (row * w + column). Returns (N, h, w) bool.
    """
    h, w = grid
    rows = torch.arange(h, device=peak.device).view(1, h, 1)
    cols = torch.arange(w, device=peak.device).view(1, 1, w)
    return torch.maximum((rows - (peak // w).view(-1, 1, 1)).abs(),
                         (cols - (peak % w).view(-1, 1, 1)).abs()) >= distance


def argmax_cells(sim: torch.Tensor) -> torch.Tensor:
    """The argmax cell of each map (N, h, w) as a one-hot bool map (first on ties)."""
    flat = torch.zeros_like(sim, dtype=torch.bool).flatten(1)
    flat[torch.arange(len(sim), device=sim.device), sim.flatten(1).argmax(dim=1)] = True
    return flat.view_as(sim)


def high_activation_cells(sim: torch.Tensor, size: int | tuple[int, int],
                          percentile: float = 95.0) -> torch.Tensor:
    """R: cells at least half covered by the high-activation region, plus the argmax cell.

    The high-activation region is ProtoPNet's: the pixels of the bicubically
    upsampled map at or above its 95th percentile (the region whose bounding
    box is the high-activation box). Taking the region rather than its box
    keeps R on the peaks when a map has several (the box would span the
    image). sim: (N, h, w) clean similarity maps. Returns (N, h, w) bool,
    never empty.
    """
    return region_cells(high_activation_mask(sim, size, percentile), sim)


def region_cells(region: torch.Tensor, sim: torch.Tensor) -> torch.Tensor:
    """The cells at least half covered by a pixel region (N, H, W), plus each map's argmax cell."""
    return (block_fraction(region, tuple(sim.shape[-2:])) >= 0.5) | argmax_cells(sim)


def irrelevant_cells(high_activation: torch.Tensor,
                     relevance: torch.Tensor | None = None,
                     has_relevance: torch.Tensor | None = None,
                     threshold: float = 0.0) -> torch.Tensor:
    """I: cells that should not matter for the class.

    With a ground-truth relevance mask (True on the object), the cells whose
    block holds at most ``threshold`` (fraction, 0 = no object pixel at all)
    object pixels; without one, all cells outside R.

    high_activation: (N, h, w) bool (R); relevance: (N, H, W) bool or None;
    has_relevance: (N,) bool, which pairs have a real mask (default: all when
    ``relevance`` is given). Returns (N, h, w) bool.
    """
    fallback = ~high_activation
    if relevance is None:
        return fallback
    from_mask = block_fraction(relevance, tuple(high_activation.shape[-2:])) <= threshold
    if has_relevance is None:
        return from_mask
    return torch.where(has_relevance.view(-1, 1, 1), from_mask, fallback)


def farthest_window(candidates: torch.Tensor, peak: torch.Tensor, side: int) -> torch.Tensor:
    """T for Hoffmann's "head on stomach": the side x side window of candidate cells farthest away.

    The window with the most ``candidates`` cells (irrelevant cells outside
    R), ties to the one whose centre is farthest from the peak cell, then the
    first in raster order. A pair without any candidate cell raises.

    candidates: (N, h, w) bool; peak: (N, h, w) bool one-hot (argmax cell).
    Returns the window's cells that are candidates, (N, h, w) bool.
    """
    n, h, w = candidates.shape
    side = max(1, min(side, h, w))
    counts = torch.nn.functional.avg_pool2d(candidates.float()[:, None], side, stride=1)
    counts = (counts[:, 0] * side * side).round()  # (N, h - side + 1, w - side + 1)
    ys = torch.arange(counts.shape[1], device=candidates.device) + (side - 1) / 2
    xs = torch.arange(counts.shape[2], device=candidates.device) + (side - 1) / 2
    flat_peak = peak.flatten(1).float().argmax(dim=1)
    py, px = (flat_peak // w).view(-1, 1, 1), (flat_peak % w).view(-1, 1, 1)
    dist2 = (ys.view(1, -1, 1) - py) ** 2 + (xs.view(1, 1, -1) - px) ** 2
    score = counts * (h * h + w * w + 1) + dist2  # most candidates first, then farthest
    best = score.flatten(1).argmax(dim=1)
    empty = counts.flatten(1).amax(dim=1) == 0
    _check_not_empty(empty)
    return _window(best, counts.shape[2], side, candidates)


NO_IRRELEVANT = "irrelevant cell outside the high-activation cells"  # what an empty window lacks


def most_similar_window(candidates: torch.Tensor, sim: torch.Tensor, side: int,
                        what: str = NO_IRRELEVANT) -> torch.Tensor:
    """T: the side x side window of candidate cells where S_j is already highest.

    The window whose best candidate cell has the highest clean similarity,
    ties (every window around that cell) to the one with the most candidate
    cells, then the first in raster order. The easiest irrelevant place to
    move the peak to: an attack that fails here fails everywhere else in
    the preset's size. A pair without any candidate cell raises.

    candidates: (N, h, w) bool; sim: (N, h, w) clean similarity maps.
    Returns the window's cells that are candidates, (N, h, w) bool.
    """
    n, h, w = candidates.shape
    side = max(1, min(side, h, w))
    masked = sim.masked_fill(~candidates, float("-inf"))[:, None]
    best_cell = torch.nn.functional.max_pool2d(masked, side, stride=1)[:, 0]
    counts = torch.nn.functional.avg_pool2d(candidates.float()[:, None], side, stride=1)[:, 0]
    top = best_cell.flatten(1).amax(dim=1)
    _check_not_empty(torch.isinf(top) & (top < 0), what)
    holds_best = best_cell == top.view(-1, 1, 1)
    best = torch.where(holds_best, counts, -1.0).flatten(1).argmax(dim=1)
    return _window(best, counts.shape[2], side, candidates)


def _check_not_empty(empty: torch.Tensor, what: str = NO_IRRELEVANT) -> None:
    if empty.any():
        raise ProtobenchError(
            f"no {what} for pair(s) {empty.nonzero().flatten().tolist()}; a target window needs one")


def _window(flat_index: torch.Tensor, positions_x: int, side: int,
            candidates: torch.Tensor) -> torch.Tensor:
    """The candidate cells of the side x side window at each pair's flat position index."""
    h, w = candidates.shape[-2:]
    y0, x0 = flat_index // positions_x, flat_index % positions_x
    r = torch.arange(h, device=candidates.device).view(1, -1, 1)
    c = torch.arange(w, device=candidates.device).view(1, 1, -1)
    window = ((r >= y0.view(-1, 1, 1)) & (r < (y0 + side).view(-1, 1, 1))
              & (c >= x0.view(-1, 1, 1)) & (c < (x0 + side).view(-1, 1, 1)))
    return window & candidates



def explicit_cells(cells: Sequence[Sequence[int]], n: int, grid: tuple[int, int],
                   device: torch.device | None = None) -> torch.Tensor:
    """The same given cells [(row, col), ...] for every pair: (N, h, w) bool."""
    h, w = grid
    out = torch.zeros(n, h, w, dtype=torch.bool, device=device)
    for r, c in cells:
        if not (0 <= r < h and 0 <= c < w):
            raise ProtobenchError(f"target cell {(r, c)} is outside the {h}x{w} grid of "
                                  f"cells; rows must be in [0, {h - 1}], columns in [0, {w - 1}]")
        out[:, r, c] = True
    return out


def pixel_mask(kind: str, size: int | tuple[int, int], boxes: torch.Tensor,
               target: torch.Tensor | None = None, margin: int = 0) -> torch.Tensor:
    """Where each pair's image may change: (N, 1, H, W) bool.

    kind: ``high-activation`` (the box), ``target`` (the pixel blocks of the
    target cells, (N, h, w) bool), ``outside`` (all but the box grown by
    ``margin`` px; Sacha et al. 2024) or ``full``. boxes: (N, 4) the
    high-activation boxes. An empty mask raises a :class:`ProtobenchError`.
    """
    H, W = _size(size)
    if kind == "high-activation":
        mask = box_mask(boxes, (H, W))
    elif kind == "outside":
        mask = ~box_mask(boxes, (H, W), margin)
    elif kind == "full":
        mask = torch.ones(len(boxes), H, W, dtype=torch.bool, device=boxes.device)
    elif kind == "target":
        if target is None:
            raise ProtobenchError("mask 'target' needs target cells")
        mask = cells_to_pixels(target, (H, W))
    else:
        raise ProtobenchError(f"unknown mask {kind!r}; choose one of: {', '.join(MASKS)}")
    empty = ~mask.flatten(1).any(dim=1)
    if empty.any():
        detail = f" (margin {margin} px)" if kind == "outside" else ""
        raise ProtobenchError(
            f"mask {kind!r}{detail} is empty for pair(s) {empty.nonzero().flatten().tolist()}: "
            "no pixel may change; choose another mask or a smaller margin")
    return mask[:, None]
