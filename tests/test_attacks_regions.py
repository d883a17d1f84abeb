import pytest
import torch

from protobench.attacks.regions import (
    argmax_cells, block_fraction, cells_away, cells_in_box, cells_to_pixels, explicit_cells,
    farthest_window, high_activation_cells, irrelevant_cells, most_similar_window, pixel_mask,
)
from protobench.errors import ProtobenchError
from protobench.model.receptive_field import high_activation_box


def test_cells_in_box_counts_cells_by_their_centre():
    # 64 px, 8 x 8 cells: block centres at 4, 12, 20, ...
    boxes = torch.tensor([[8, 24, 0, 13], [5, 6, 5, 6]])
    cells = cells_in_box(boxes, (8, 8), 64)
    assert cells[0].nonzero().tolist() == [[1, 0], [1, 1], [2, 0], [2, 1]]
    assert not cells[1].any()  # a box between centres holds no cell
    # a centre on the box's edge is inside: the box [52, 64) x [16, 44) ends on x = 44,
    # cell column 5's centre
    assert cells_in_box(torch.tensor([[52, 64, 16, 44]]), (8, 8), 64)[0, 7].nonzero().flatten().tolist() \
        == [2, 3, 4, 5]


@pytest.mark.parametrize("grid, size", [(8, 64), (7, 224), (14, 224)])
def test_every_cell_of_r_is_inside_its_box(grid, size):
    """So "the peak leaves the box" implies "the peak leaves R" (README, "What it measures").
    A cell exactly half covered along the box's end used to fall outside it."""
    from protobench.attacks.regions import region_cells
    from protobench.model.receptive_field import high_activation_mask, mask_bounding_box

    g = torch.Generator().manual_seed(1)
    sim = (torch.randn(2000, grid, grid, generator=g) * 5 * torch.rand(2000, 1, 1, generator=g)).exp()
    region = high_activation_mask(sim, size)
    R = region_cells(region, sim)
    inside = cells_in_box(mask_bounding_box(region), (grid, grid), size)
    assert not (R & ~inside).any()


def test_high_activation_cells_never_empty_and_hold_the_peak():
    sim = torch.zeros(3, 8, 8)
    sim[0, 3, 5] = 1.0
    sim[1] = torch.arange(64.0).view(8, 8)
    R = high_activation_cells(sim, 64)
    assert R.flatten(1).any(dim=1).all()
    assert R[0, 3, 5] and R[1, 7, 7]
    assert R[2].all()                      # a flat map: every cell is as high as the peak


def test_high_activation_cells_of_a_peaked_map_cover_its_peak_only():
    sim = torch.zeros(1, 8, 8)
    sim[0, 2:4, 5:7] = 5.0
    R = high_activation_cells(sim, 64)
    assert R[0, 2:4, 5:7].all() and R.sum() <= 6


def test_high_activation_cells_of_two_peaks_stay_on_the_peaks():
    sim = torch.zeros(1, 8, 8)
    sim[0, 0, 0] = sim[0, 7, 7] = 5.0
    box = high_activation_box(sim, 64)
    assert box.tolist() == [[0, 64, 0, 64]]        # the box spans the image ...
    R = high_activation_cells(sim, 64)
    assert R[0, 0, 0] and R[0, 7, 7] and R.sum() <= 4   # ... R does not


def test_argmax_cells_is_one_hot():
    sim = torch.rand(3, 4, 5)
    one_hot = argmax_cells(sim)
    assert (one_hot.flatten(1).sum(dim=1) == 1).all()
    assert (sim[one_hot] == sim.flatten(1).amax(dim=1)).all()


def test_irrelevant_cells_from_a_mask_and_the_fallback():
    R = torch.zeros(2, 4, 4, dtype=torch.bool)
    R[:, 1, 1] = True
    relevance = torch.zeros(2, 32, 32, dtype=torch.bool)
    relevance[:, 8:16, 8:16] = True      # exactly cell (1, 1)
    relevance[:, 16:18, 0:8] = True      # 2 of 8 rows of cell (2, 0): fraction 0.25
    has = torch.tensor([True, False])
    I = irrelevant_cells(R, relevance, has, threshold=0.0)
    assert not I[0, 1, 1] and not I[0, 2, 0] and I[0].sum() == 14
    assert torch.equal(I[1], ~R[1])      # no mask: everything outside R
    I_loose = irrelevant_cells(R, relevance, has, threshold=0.25)
    assert I_loose[0, 2, 0] and not I_loose[0, 1, 1]
    assert torch.equal(irrelevant_cells(R), ~R)


def test_block_fraction_and_cells_to_pixels_agree_for_uneven_sizes():
    cells = torch.zeros(1, 3, 3, dtype=torch.bool)
    cells[0, 1, 2] = True
    pixels = cells_to_pixels(cells, (10, 11))
    assert pixels.shape == (1, 10, 11)
    frac = block_fraction(pixels, (3, 3))
    assert torch.equal(frac == 1, cells) and torch.equal(frac == 0, ~cells)


def test_irrelevant_box_picks_the_fullest_window_farthest_from_the_peak():
    candidates = torch.zeros(1, 8, 8, dtype=torch.bool)
    candidates[0, 0:2, 0:2] = True       # full window near the peak
    candidates[0, 6:8, 6:8] = True       # full window far from it
    candidates[0, 4, 4] = True
    peak = torch.zeros(1, 8, 8, dtype=torch.bool)
    peak[0, 1, 3] = True
    T = farthest_window(candidates, peak, side=2)
    assert T[0].nonzero().tolist() == [[6, 6], [6, 7], [7, 6], [7, 7]]
    with pytest.raises(ProtobenchError, match="no irrelevant cell"):
        farthest_window(torch.zeros_like(candidates), peak, side=2)


def test_explicit_cells_checks_the_grid():
    assert explicit_cells([(0, 1), (3, 3)], 2, (4, 4)).sum() == 4
    with pytest.raises(ProtobenchError, match=r"\(4, 0\)"):
        explicit_cells([(4, 0)], 1, (4, 4))


def test_pixel_masks():
    boxes = torch.tensor([[10, 20, 30, 40]])
    ha = pixel_mask("high-activation", 64, boxes)
    assert ha.shape == (1, 1, 64, 64) and ha.sum() == 100 and ha[0, 0, 10, 30] and not ha[0, 0, 20, 30]
    out = pixel_mask("outside", 64, boxes, margin=5)
    assert out.sum() == 64 * 64 - 20 * 20 and not out[0, 0, 5, 25] and out[0, 0, 4, 25]
    assert pixel_mask("full", 64, boxes).all()
    target = torch.zeros(1, 8, 8, dtype=torch.bool)
    target[0, 7, 0] = True
    tm = pixel_mask("target", 64, boxes, target)
    assert tm.sum() == 64 and tm[0, 0, 56:, :8].all()


def test_empty_masks_raise():
    boxes = torch.tensor([[0, 64, 0, 64], [10, 20, 10, 20]])
    with pytest.raises(ProtobenchError, match=r"mask 'outside' \(margin 0 px\) is empty for pair\(s\) \[0\]"):
        pixel_mask("outside", 64, boxes)
    with pytest.raises(ProtobenchError, match="empty"):
        pixel_mask("target", 64, boxes, torch.zeros(2, 8, 8, dtype=torch.bool))
    with pytest.raises(ProtobenchError, match="unknown mask 'everywhere'"):
        pixel_mask("everywhere", 64, boxes)


def test_most_similar_window_holds_the_most_similar_candidate_cell():
    candidates = torch.zeros(1, 6, 6, dtype=torch.bool)
    candidates[0, :, 4:] = True                   # two irrelevant columns on the right
    candidates[0, 0, 0] = True                    # a lone irrelevant corner cell
    sim = torch.zeros(1, 6, 6)
    sim[0, 0, 0] = 5.0                            # the most similar candidate...
    sim[0, 3, 4] = 4.0
    sim[0, 2, 2] = 9.0                            # ...the peak itself is no candidate
    T = most_similar_window(candidates, sim, side=2)
    assert T[0].nonzero().tolist() == [[0, 0]]    # only the candidates of the window count
    sim[0, 0, 0] = 1.0                            # now the best is (3, 4): of the windows
    T = most_similar_window(candidates, sim, side=2)  # holding it, the first full one
    assert T[0].nonzero().tolist() == [[2, 4], [2, 5], [3, 4], [3, 5]]
    with pytest.raises(ProtobenchError, match="no irrelevant cell"):
        most_similar_window(torch.zeros_like(candidates), sim, side=2)


def test_cells_away_is_the_chebyshev_distance_from_the_peak():
    away = cells_away(torch.tensor([1 * 5 + 3]), (4, 5))   # peak at (1, 3) of a 4 x 5 grid
    assert away.shape == (1, 4, 5)
    assert (~away[0]).nonzero().tolist() == [[r, c] for r in range(0, 3) for c in range(2, 5)]
    assert cells_away(torch.tensor([0]), (4, 5), distance=3)[0].sum() == 20 - 9
