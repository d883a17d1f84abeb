"""select_pairs and run_attack: the entry points the runner calls."""

import pytest
import torch

from protobench.attacks import (
    AttackResult, Pairs, load_attack, measure, noise_control, run_attack, select_pairs,
)
from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ProtoPNet.build(Architecture(img_size=32, num_classes=3, prototypes_per_class=2,
                                        prototype_depth=16)).eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 32, 32, generator=g)
    labels = torch.tensor([0, 1, 2])
    relevance = torch.zeros(3, 32, 32, dtype=torch.bool)
    relevance[:, 10:22, 10:22] = True
    return images, labels, relevance


def test_top_k_pairs_and_their_regions(model, batch):
    images, labels, relevance = batch
    pairs = select_pairs(model, images, labels, relevance, load_attack("pgd-local", k=2))
    assert len(pairs) == 6 and pairs.image_index.tolist() == [0, 0, 1, 1, 2, 2]
    _, _, maps = model.explain(images)
    best = maps.flatten(2).amax(2).topk(2, dim=1).indices.flatten()
    assert torch.equal(pairs.prototype, best)
    assert pairs.label.tolist() == [0, 0, 1, 1, 2, 2]
    assert pairs.high_activation.shape == (6, 4, 4) and pairs.mask.shape == (6, 1, 32, 32)
    assert pairs.high_activation.flatten(1).any(1).all()
    assert not (pairs.target & pairs.high_activation).any()
    assert not (pairs.irrelevant[:, 1:3, 1:3]).any()       # the object's cells are relevant
    assert pairs.has_relevance.all()
    torch.testing.assert_close(pairs.sim_before, maps[pairs.image_index, pairs.prototype])
    # j's rank among the other classes' prototypes (classes: prototypes 0-1, 2-3, 4-5)
    all_max = maps.flatten(2).amax(2)[pairs.image_index]
    own = all_max.gather(1, pairs.prototype[:, None])
    other = torch.arange(6)[None] // 2 != pairs.prototype[:, None] // 2
    assert torch.equal(pairs.rank_before, ((all_max > own) & other).sum(1))
    assert pairs.logits_before.shape == (6, 3)
    unchanged, _ = measure(model, images, pairs, images[pairs.image_index])
    assert (unchanged.prc == 0).all()
    sub = pairs[torch.tensor([1, 4])]
    assert isinstance(sub, Pairs) and sub.prototype.tolist() == [pairs.prototype[1], pairs.prototype[4]]
    assert len(pairs[2]) == 1


def test_class_top_k_and_explicit_prototypes(model, batch):
    images, labels, relevance = batch
    pairs = select_pairs(model, images, labels, relevance,
                         load_attack("pgd-local", prototypes="class-top-k", k=2))
    assert torch.equal(model.prototype_class[pairs.prototype], pairs.label)
    pairs = select_pairs(model, images, labels, None, load_attack("pgd-local", prototypes=[5, 0]))
    assert pairs.prototype.tolist() == [5, 0] * 3
    assert not pairs.has_relevance.any()
    assert torch.equal(pairs.irrelevant, ~pairs.high_activation)   # no mask: outside R


@pytest.mark.parametrize("overrides,match", [
    (dict(prototypes=[6]), r"prototypes \[6\] do not exist"),
    (dict(prototypes="class-top-k", k=3), "k=3 is more than the 2"),
    (dict(target="cells", target_cells=[[4, 0]], mask="target"), r"\(4, 0\)"),
    (dict(target="box", target_box=[0, 40, 0, 8]), "outside the 32x32 image"),
])
def test_bad_selections_are_refused(model, batch, overrides, match):
    images, labels, relevance = batch
    with pytest.raises(ProtobenchError, match=match):
        select_pairs(model, images, labels, relevance, load_attack("pgd-local", **overrides))


def test_relevance_masks_per_image_with_gaps(model, batch):
    images, labels, relevance = batch
    pairs = select_pairs(model, images, labels, [relevance[0], None, relevance[2]],
                         load_attack("pgd-local"))
    assert pairs.has_relevance.tolist() == [True, False, True]
    assert torch.equal(pairs.irrelevant[1], ~pairs.high_activation[1])
    with pytest.raises(ProtobenchError, match="relevance mask 0 has shape"):
        select_pairs(model, images, labels, [torch.ones(8, 8, dtype=torch.bool), None, None])


MASKED = [
    ("pgd-local", {}),
    ("pgd-head-on-stomach", {}),
    ("pgd-suppress", {}),
    ("pgd-outside", {"margin": 4}),
    ("pgd-local", {"mask": "full", "objective": "raise"}),
    ("pgd-local", {"mask": "target", "target": "cells", "target_cells": [[3, 3], [0, 0]]}),
    ("pgd-local", {"norm": "L2", "eps": 0.5, "alpha": 0.1}),
]


@pytest.mark.parametrize("name,overrides", MASKED)
def test_every_mask_kind_leaves_the_outside_exactly_unchanged(model, batch, name, overrides):
    images, labels, relevance = batch
    preset = load_attack(name, steps=3, **overrides)
    pairs = select_pairs(model, images, labels, relevance, preset)
    g = torch.Generator().manual_seed(0)
    for result in run_attack(model, images, pairs, preset, g) + [noise_control(model, images, pairs, preset, g)]:
        x = images[pairs.image_index]
        outside = ~pairs.mask.expand_as(x)
        assert isinstance(result, AttackResult)
        assert torch.equal(result.x_adv[outside], x[outside])        # exactly, not closely
        assert (result.x_adv != x).any()
        assert 0 <= result.x_adv.min() and result.x_adv.max() <= 1
        delta = (result.x_adv - x).flatten(1)
        if preset.norm == "Linf":
            assert delta.abs().amax() <= preset.eps + 1e-6
        else:
            assert (delta.norm(dim=1) <= preset.eps * (1 + 1e-5)).all()


def test_masked_pgd_result_has_objective_and_improves_on_clean(model, batch):
    images, labels, relevance = batch
    preset = load_attack("pgd-suppress", steps=5)
    pairs = select_pairs(model, images, labels, relevance, preset)
    [result] = run_attack(model, images, pairs, preset)
    assert result.attack == "pgd-suppress" and result.setting == {}
    clean = -pairs.sim_before.flatten(1).amax(1)
    assert (result.objective > clean).all()


def test_whole_image_and_jpeg_results_per_pair(model, batch):
    images, labels, relevance = batch
    preset = load_attack("pgd-global", steps=2, k=2)
    pairs = select_pairs(model, images, labels, relevance, preset)
    [result] = run_attack(model, images, pairs, preset)
    assert result.x_adv.shape == (6, 3, 32, 32) and result.objective is None
    assert torch.equal(result.x_adv[0], result.x_adv[1])               # one attack per image
    jpeg = load_attack("jpeg", qualities=[80, 20])
    results = run_attack(model, images, select_pairs(model, images, labels, relevance, jpeg), jpeg)
    assert [r.setting for r in results] == [{"quality": 80}, {"quality": 20}]


def test_noise_preset_runs_the_control(model, batch):
    images, labels, relevance = batch
    preset = load_attack("noise")
    pairs = select_pairs(model, images, labels, relevance, preset)
    [result] = run_attack(model, images, pairs, preset, torch.Generator().manual_seed(3))
    again = noise_control(model, images, pairs, preset, torch.Generator().manual_seed(3))
    assert result.attack == "noise" and torch.equal(result.x_adv, again.x_adv)


def test_ensemble_is_never_weaker_than_any_member_per_pair(model, batch):
    """AutoAttack's rule: per pair the ensemble keeps the member image with the
    largest success margin, so its margin is the max over its members' and its
    image is one of theirs."""
    from protobench.attacks import PeakMargin
    images, labels, relevance = batch
    preset = load_attack("auto-local", steps=3, k=2)
    pairs = select_pairs(model, images, labels, relevance, preset)
    result, = run_attack(model, images, pairs, preset, torch.Generator().manual_seed(0))
    assert len(result.members) == len(preset.members) >= 2
    assert preset.success_criterion == "in-target"
    margin = PeakMargin(pairs.prototype, pairs.target)    # T: the irrelevant cells outside R
    assert torch.equal(pairs.target, pairs.irrelevant & ~pairs.high_activation)
    with torch.no_grad():
        ours = margin(model, result.x_adv)
        theirs = torch.stack([margin(model, r.x_adv) for r in result.members])
    torch.testing.assert_close(ours, theirs.amax(dim=0))
    torch.testing.assert_close(result.objective, ours)
    for i, m in enumerate(result.member.tolist()):
        assert torch.equal(result.x_adv[i], result.members[m].x_adv[i])
    outside = ~pairs.mask.expand_as(result.x_adv)
    assert torch.equal(result.x_adv[outside], images[pairs.image_index][outside])


def test_box_margin_and_in_target_margins_use_their_own_regions(model, batch):
    from protobench.attacks import success_margin
    images, labels, relevance = batch
    preset = load_attack("pgd-local", objective="box-margin")
    pairs = select_pairs(model, images, labels, relevance, preset)
    assert preset.success_criterion == "out-of-box"
    margin = success_margin(preset, pairs)
    assert torch.equal(margin.region, ~pairs.box_cells)
    assert success_margin(load_attack("pgd-suppress"), pairs) is None   # the objective itself


def test_object_elsewhere_targets_object_cells_away_from_the_peak(model, batch):
    images, labels, relevance = batch
    preset = load_attack("pgd-head-on-stomach", target="object-elsewhere")
    pairs = select_pairs(model, images, labels, relevance, preset)
    peak = pairs.sim_before.flatten(1).argmax(dim=1)
    for i in range(len(pairs.target)):
        T = pairs.target[i]
        assert 1 <= T.sum() <= 4                          # a 2 x 2 window's candidate cells
        assert not (T & pairs.irrelevant[i]).any() and not (T & pairs.high_activation[i]).any()
        r, c = divmod(int(peak[i]), T.shape[1])
        assert all(max(abs(a - r), abs(b - c)) >= 2 for a, b in T.nonzero().tolist())
    with pytest.raises(ProtobenchError, match="it needs an object mask"):
        select_pairs(model, images, labels, None, preset)   # without masks no cell is "object"
