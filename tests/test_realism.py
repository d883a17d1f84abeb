import json
import math

import pytest
import torch

from protobench.errors import ProtobenchError
from protobench.evaluation.realism import (PEER_FIGURES, PEER_RESNET18, PEER_VGG19_JPEG, log_distance,
                                log_similarity, model_realism, peer_top1, peer_window_ratio,
                                summarize, top1_realism)


def _two_images():
    distances = torch.tensor([
        [[[0.5, 0.9], [0.7, 0.6]],       # image 0, prototype 0: best 0.5
         [[0.1, 0.4], [2.0, 1.0]]],      # prototype 1: best 0.1, the top-1
        [[[3.0, 0.2], [1.0, 1.0]],       # image 1, prototype 0: best 0.2, the top-1
         [[0.3, 0.3], [0.3, 0.3]]],
    ])
    relevance = torch.zeros(2, 4, 4, dtype=torch.bool)
    relevance[0, :2, :2] = True          # image 0: the top-left block is object...
    relevance[0, 0, 2] = True            # ... and one pixel of the top-right block
    relevance[1] = True                  # image 1: object in every block, no irrelevant cell
    return distances, relevance


def test_top1_realism_by_hand():
    per = top1_realism(*_two_images())
    assert per.prototype.tolist() == [1, 0]
    assert per.d_best.tolist() == pytest.approx([0.1, 0.2])
    # image 0: the irrelevant cells are the bottom row (2.0, 1.0); the top-right
    # block holds one object pixel, so its 0.4 does not count
    assert per.d_irrelevant[0].item() == pytest.approx(1.0)
    assert per.distance_ratio[0].item() == pytest.approx(10.0)
    assert per.top1_similarity[0].item() == pytest.approx(math.log(1.1 / 0.1001))
    assert per.irrelevant_similarity[0].item() == pytest.approx(math.log(2.0 / 1.0001))
    assert math.isnan(per.d_irrelevant[1].item()) and math.isnan(per.distance_ratio[1].item())


def test_summary_counts_and_leaves_out_images_without_irrelevant_cells():
    report = summarize(top1_realism(*_two_images()))
    assert report.images == 2 and report.without_irrelevant_cell == 1
    assert report.distance_ratio.n == 1 and report.distance_ratio.median == pytest.approx(10.0)
    assert report.top1_similarity.n == 2
    sims = sorted([math.log(1.1 / 0.1001), math.log(1.2 / 0.2001)])
    assert report.top1_similarity.median == pytest.approx(sum(sims) / 2)
    assert report.top1_similarity.q25 == pytest.approx(sims[0] + 0.25 * (sims[1] - sims[0]))
    json.dumps(report.to_dict(), allow_nan=False)  # serialisable


def test_an_empty_distribution_is_none_in_json():
    distances, relevance = _two_images()
    relevance[:] = True  # no irrelevant cell anywhere
    report = summarize(top1_realism(distances, relevance)).to_dict()
    assert report["without_irrelevant_cell"] == 2
    assert report["distance_ratio"] == {"q25": None, "median": None, "q75": None, "n": 0}
    json.dumps(report, allow_nan=False)


def test_model_realism_needs_masks():
    class NoMasks(torch.utils.data.TensorDataset):
        def relevance_mask(self, i):
            return None
    data = NoMasks(torch.rand(2, 3, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(ProtobenchError, match="object masks"):
        model_realism(None, data)


def test_log_similarity_is_protopnets():
    assert log_similarity(torch.tensor(0.08)).item() == pytest.approx(math.log(1.08 / 0.0801))


def test_log_distance_inverts_log_similarity():
    for d in (0.0, 0.006, 0.08, 0.85, 30.0):
        assert log_distance(log_similarity(torch.tensor(d, dtype=torch.float64)).item()) == pytest.approx(d, abs=1e-12)


def test_the_peers_figures_are_what_their_notebooks_print():
    # local_analysis_attack1.ipynb: prototype 1165, 5th on its image, peak 2.613228, and 0.782304
    # in the 2x2 window it attacks; so d 0.079 and 0.843, a ratio of 10.7 (not the top-1's, and
    # not the background's)
    assert peer_window_ratio() == pytest.approx(0.8426 / 0.07899, rel=1e-3)
    assert peer_top1(PEER_RESNET18).tolist() == [pytest.approx(5.0936, abs=1e-4)]
    vgg19 = peer_top1(PEER_VGG19_JPEG)
    assert len(vgg19) == 10 and vgg19.median().item() == pytest.approx(4.2432, abs=1e-4)  # lower median
    assert all(f.rank >= 1 and f.similarity > 0 for f in PEER_FIGURES)


def test_elsewhere_ratio_takes_the_best_object_cell_two_cells_away():
    d = torch.full((1, 1, 4, 4), 9.0)
    d[0, 0, 0, 0] = 0.1      # the best cell
    d[0, 0, 1, 1] = 0.2      # object, but a neighbour: the same part
    d[0, 0, 2, 0] = 0.5      # object, two rows down: another part
    d[0, 0, 3, 3] = 0.3      # two cells away but background
    relevance = torch.zeros(1, 8, 8, dtype=torch.bool)
    relevance[0, :6, :4] = True          # object in the blocks of rows 0-2, columns 0-1
    per = top1_realism(d, relevance)
    assert per.elsewhere_ratio.item() == pytest.approx(5.0)
    assert per.distance_ratio.item() == pytest.approx(3.0)
    relevance[0, 4:, :] = False          # no object cell two cells from the best one
    assert math.isnan(top1_realism(d, relevance).elsewhere_ratio.item())
    assert summarize(top1_realism(d, relevance)).elsewhere_ratio.n == 0
