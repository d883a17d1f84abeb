"""Per-pair metrics on tiny hand-made tensors with hand-computed answers."""

import math

import numpy as np
import pytest
import torch

from protobench.metrics.per_pair import (
    PairMetrics,
    pac,
    pair_metrics,
    peak_irrelevant,
    peak_moved,
    perturbation_norms,
    plc,
    prc,
    predictions,
    prototype_rank,
    region_max,
    similarity_shift,
)


def test_similarity_shift():
    before = torch.tensor([[[1.0, 3.0], [2.0, 0.0]]])
    after = torch.tensor([[[1.0, 0.5], [2.5, 0.0]]])
    out = similarity_shift(before, after)
    assert out.sim_before.tolist() == [3.0]
    assert out.sim_after.tolist() == [2.5]
    assert out.sim_shift.tolist() == [-0.5]


def test_region_max_and_empty_region():
    sim = torch.tensor([[[1.0, 3.0], [2.0, 0.0]]] * 2)
    region = torch.tensor([[[True, False], [True, False]],
                           [[False, False], [False, False]]])
    out = region_max(sim, region)
    assert out[0].item() == 2.0
    assert math.isnan(out[1].item())


def _cell_maps(*rows):
    return torch.tensor(rows, dtype=torch.float32)


TOP_LEFT = torch.tensor([[True, False], [False, False]])


def test_peak_moved_hand_cases_and_ties():
    sim = _cell_maps([[1.0, 0.0], [0.0, 0.0]],   # peak in R
                     [[1.0, 2.0], [0.0, 0.0]],   # peak outside R
                     [[2.0, 2.0], [0.0, 0.0]],   # tie with R: not moved
                     [[1.0, 2.0], [0.0, 0.0]],   # R is everything: nothing outside
                     [[1.0, 2.0], [0.0, 0.0]])   # R empty: the peak is outside R
    R = torch.stack([TOP_LEFT, TOP_LEFT, TOP_LEFT,
                     torch.ones(2, 2, dtype=torch.bool), torch.zeros(2, 2, dtype=torch.bool)])
    assert peak_moved(sim, R).tolist() == [False, True, False, False, True]


def test_peak_irrelevant_hand_cases_and_ties():
    sim = _cell_maps([[0.0, 5.0], [1.0, 0.0]],   # argmax (0,1) in I
                     [[5.0, 1.0], [0.0, 0.0]],   # argmax (0,0) not in I
                     [[5.0, 5.0], [0.0, 0.0]],   # tie between I and not-I: not counted
                     [[1.0, 2.0], [0.0, 0.0]],   # I empty
                     [[1.0, 2.0], [0.0, 0.0]])   # I is everything
    right = torch.tensor([[False, True], [False, True]])
    I = torch.stack([right, right, right,
                     torch.zeros(2, 2, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool)])
    assert peak_irrelevant(sim, I).tolist() == [True, False, False, False, True]


def test_pac_hand_values_with_clipping():
    before = torch.tensor([2.0, 4.0, 1.0, -1.0, 0.0, 0.0, -2.0])
    after = torch.tensor([1.0, 5.0, -0.5, 1.0, 0.0, 2.0, -3.0])
    out = pac(before, after)
    # a_before = [2, 4, 1, 0, 0, 0, 0], a_after = [1, 5, 0, 1, 0, 2, 0]
    assert out[:3].tolist() == pytest.approx([50.0, -25.0, 100.0])
    assert math.isnan(out[3].item())   # 0 -> positive: undefined
    assert out[4].item() == 0.0        # 0 -> 0: no change
    assert math.isnan(out[5].item())
    assert out[6].item() == 0.0        # both clipped to 0


def test_pac_accepts_maps():
    before = torch.tensor([[[1.0, 2.0], [0.0, 0.0]]])
    after = torch.tensor([[[0.5, 1.5], [0.0, 0.0]]])
    assert pac(before, after).tolist() == pytest.approx([25.0])


def test_prc_known_ranking():
    prototype_class = torch.tensor([0, 0, 1, 1, 2])
    prototype = torch.tensor([0, 2])
    all_before = torch.tensor([[5.0, 6.0, 4.0, 3.0, 2.0],    # j=0: proto 1 is own class -> rank 0
                               [4.0, 2.0, 3.0, 5.0, 0.0]])   # j=2: proto 0 (4 > 3) -> rank 1
    all_after = torch.tensor([[3.0, 6.0, 4.0, 3.5, 2.0],     # j=0: protos 2, 3 -> rank 2
                              [1.0, 2.0, 3.0, 9.0, 3.0]])    # j=2: proto 4 ties -> rank 0
    assert prototype_rank(all_before, prototype, prototype_class).tolist() == [0, 1]
    assert prototype_rank(all_after, prototype, prototype_class).tolist() == [2, 0]
    assert prc(all_before, all_after, prototype, prototype_class).tolist() == [2, -1]


def test_plc_hand_iou_at_map_size():
    before = torch.arange(16, dtype=torch.float32).view(1, 4, 4)
    # 0.9 quantile of 0..15 is 13.5: top cells are the flat indices 14, 15.
    after = torch.roll(before.flatten(), 1).view(1, 4, 4)
    # after: value 15 at index 0, 14 at index 15 -> top cells 0, 15.
    # IoU = |{15}| / |{0, 14, 15}| = 1/3.
    out = plc(before, after, img_size=4)
    assert out.tolist() == pytest.approx([100.0 * (1 - 1 / 3)])


def test_plc_identical_maps_is_zero():
    sim = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    assert plc(sim, sim.clone(), img_size=8).tolist() == [0.0, 0.0, 0.0]


def test_plc_upsampled_disjoint_corners():
    # A one-hot cell upsampled bilinearly 4 -> 8 covers a 3x3 corner with
    # weights {1, .75, .25} x {1, .75, .25}; its 0.9 quantile is 0.1875, so
    # the top region is the 8 pixels >= 0.1875 near that corner.
    before = torch.zeros(1, 4, 4)
    before[0, 0, 0] = 1.0
    after = torch.zeros(1, 4, 4)
    after[0, 3, 3] = 1.0
    assert plc(before, after, img_size=8).tolist() == pytest.approx([100.0])
    # Peak one cell to the right: weights rows {1, .75, .25} x cols 1..4
    # {.25, .75, .75, .25}; threshold again 0.1875 gives rows 0-1 x cols 1-4
    # plus (2, 2), (2, 3): 10 pixels. Before: the 3x3 corner without (2, 2),
    # 8 pixels. Intersection (0|1, 1|2) = 4, union 14, IoU = 2/7.
    shifted = torch.zeros(1, 4, 4)
    shifted[0, 0, 1] = 1.0
    assert plc(before, shifted, img_size=8).tolist() == pytest.approx([100.0 * 5 / 7])


def test_predictions():
    logits_before = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]])
    logits_after = torch.tensor([[2.0, 3.0, 0.0], [0.0, 1.0, 3.0]])
    labels = torch.tensor([0, 1])
    out = predictions(logits_before, logits_after, labels)
    assert out.pred_before.tolist() == [0, 2]
    assert out.pred_after.tolist() == [1, 2]
    assert out.pred_kept.tolist() == [False, True]
    assert out.correct_before.tolist() == [True, False]
    assert out.correct_after.tolist() == [False, False]


@pytest.mark.parametrize("mask_with_channel", [True, False])
def test_perturbation_norms_and_outside_mask(mask_with_channel):
    x = torch.full((2, 3, 4, 4), 0.5)
    x_adv = x.clone()
    x_adv[0, 0, 1, 1] += 0.1
    x_adv[0, 1, 2, 2] -= 0.2
    x_adv[0, 2, 2, 2] -= 0.2
    x_adv[1, 0, 3, 3] += 1e-3          # one pixel, outside the mask below
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[:, 1:3, 1:3] = True
    if mask_with_channel:
        mask = mask.unsqueeze(1)
    out = perturbation_norms(x, x_adv, mask)
    assert out.linf.tolist() == pytest.approx([0.2, 1e-3], abs=1e-6)
    assert out.l2.tolist() == pytest.approx([0.3, 1e-3], abs=1e-6)
    assert out.frac_changed.tolist() == pytest.approx([2 / 16, 1 / 16])
    assert out.outside_unchanged.tolist() == [True, False]


def test_perturbation_norms_rejects_bad_mask_shape():
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="mask"):
        perturbation_norms(x, x, torch.ones(2, 5, 5, dtype=torch.bool))


def _batch(n, seed):
    g = torch.Generator().manual_seed(seed)
    h = w = 3
    x = torch.rand(n, 3, 12, 12, generator=g)
    mask = torch.zeros(n, 1, 12, 12, dtype=torch.bool)
    mask[..., :6, :6] = True
    x_adv = (x + 0.03 * mask).clamp(0, 1)
    R = torch.zeros(n, h, w, dtype=torch.bool)
    R[:, 0, 0] = True
    return dict(
        sim_before=torch.rand(n, h, w, generator=g),
        sim_after=torch.rand(n, h, w, generator=g),
        high_activation=R,
        irrelevant=~R,
        target=~R,
        box_cells=R,
        rank_before=torch.randint(0, 5, (n,), generator=g),
        all_after=torch.rand(n, 6, generator=g),
        prototype=torch.randint(0, 6, (n,), generator=g),
        prototype_class=torch.tensor([0, 0, 1, 1, 2, 2]),
        logits_before=torch.randn(n, 3, generator=g),
        logits_after=torch.randn(n, 3, generator=g),
        labels=torch.randint(0, 3, (n,), generator=g),
        x=x, x_adv=x_adv, mask=mask,
    )


def test_pair_metrics_fields_to_dict_and_concat():
    a = pair_metrics(**_batch(4, 0))
    b = pair_metrics(**_batch(3, 1))
    assert len(a) == 4
    table = a.to_dict()
    assert list(table) == [
        "sim_before", "sim_after", "sim_shift", "sim_R_before", "sim_R_after",
        "sim_I_before", "sim_I_after", "sim_T_after", "peak_moved", "out_of_box",
        "peak_irrelevant", "peak_in_target", "target_above_clean_peak", "pac", "prc",
        "plc", "pred_before", "pred_after", "pred_kept", "in_target_kept", "correct_before",
        "correct_after", "linf", "l2", "frac_changed", "outside_unchanged"]
    assert all(isinstance(v, np.ndarray) and v.shape == (4,) for v in table.values())
    assert table["outside_unchanged"].all()
    # R and I are complements, so the two peak tests agree.
    assert (table["peak_moved"] == table["peak_irrelevant"]).all()
    assert (table["peak_moved"] == table["out_of_box"]).all()  # here the box's cells are R
    assert (table["peak_in_target"] == table["peak_irrelevant"]).all()
    both = PairMetrics.concat([a, b])
    assert len(both) == 7
    assert torch.equal(both.prc, torch.cat([a.prc, b.prc]))
    assert torch.equal(both.sim_shift, torch.cat([a.sim_shift, b.sim_shift]))
