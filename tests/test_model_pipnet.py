"""PIP-Net: the network, its loss and views, its stages, and what the benchmark reads of it."""

import pytest
import torch

from protobench.attacks import AttackPreset
from protobench.attacks.pairs import select_pairs
from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet
from protobench.evaluation.realism import model_realism
from protobench.training.pipnet import (align_loss, colour_views, early_backbone_parameters,
                                       pipnet_loss, train_pipnet_stages)


def _pipnet(**kw):
    torch.manual_seed(0)
    arch = dict(family="pipnet", img_size=32, num_classes=3)
    arch.update(kw)
    classes = "abcdefghij"[:arch["num_classes"]]
    return ProtoPNet.build(Architecture(**arch), classes=list(classes), name="pip").eval()


def test_presence_is_a_softmax_over_the_prototypes_and_logits_follow_pip_net():
    model = _pipnet()
    assert model.family == "pipnet" and model.num_prototypes == 128  # the small CNN's channels
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        maps = model.similarity_maps(x)
        torch.testing.assert_close(maps.sum(dim=1), torch.ones(2, *maps.shape[2:]))
        pooled = maps.flatten(2).amax(dim=2)
        pooled = torch.where(pooled < 0.1, torch.zeros_like(pooled), pooled)  # inference threshold
        out = pooled @ torch.relu(model.net.classification.weight).t()
        torch.testing.assert_close(model(x), torch.log1p(out ** 2))
        logits, min_d, same_maps = model.explain(x)
        torch.testing.assert_close(same_maps, maps)
        torch.testing.assert_close(min_d, 1 - maps.flatten(2).amax(dim=2))


def test_an_extra_convolution_sets_the_number_of_prototypes():
    model = _pipnet(num_prototypes=12)
    assert model.similarity_maps(torch.rand(1, 3, 32, 32)).shape[1] == 12
    with pytest.raises(ProtobenchError, match=">= 0"):
        _pipnet(num_prototypes=-1)


def test_classes_of_a_prototype_are_its_positive_weights():
    model = _pipnet(num_prototypes=4)
    with torch.no_grad():
        model.net.classification.weight.copy_(torch.tensor(
            [[1.0, 0.0, -1.0, 0.0], [0.5, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, -3.0]]))
    assert model.class_relation.tolist() == [[True, True, False], [False, True, False],
                                             [False, False, False], [False, False, False]]
    assert model.prototype_class.tolist() == [0, 1, -1, -1]
    assert model.net.prototype_weights()[0].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_views_change_colour_not_geometry_and_repeat_with_the_seed():
    x = torch.zeros(2, 3, 16, 16)
    x[:, :, 4:8, 4:8] = 0.8
    views = colour_views(x, torch.Generator().manual_seed(0))
    assert views.shape == (4, 3, 16, 16) and views.min() >= 0 and views.max() <= 1
    inside = views[:, :, 4:8, 4:8].mean(dim=(1, 2, 3))
    outside = views[:, :, 10:, 10:].mean(dim=(1, 2, 3))
    assert (inside > outside + 0.3).all()  # the square stays where it was in every view
    again = colour_views(x, torch.Generator().manual_seed(0))
    assert torch.equal(views, again)
    assert not torch.equal(views[:2], views[2:])


def test_align_loss_is_zero_for_patches_that_keep_their_prototype():
    one_hot = torch.eye(4)
    assert align_loss(one_hot, one_hot).item() == pytest.approx(0.0, abs=1e-6)
    assert align_loss(one_hot, one_hot.roll(1, dims=0)).item() > 10  # every patch changed prototype


def test_tanh_loss_rewards_every_prototype_being_present_somewhere():
    labels = torch.tensor([0, 1])
    logits = torch.zeros(4, 2)
    spread = torch.eye(2).repeat(2, 1)  # two images, each prototype present in one
    presence = spread.view(4, 2, 1, 1)
    _, terms = pipnet_loss(presence, spread, logits, labels, 1.0, 1.0, 1.0)
    collapsed = torch.tensor([[1.0, 0.0]]).repeat(4, 1)  # prototype 1 never present
    _, collapsed_terms = pipnet_loss(collapsed.view(4, 2, 1, 1), collapsed, logits, labels, 1.0, 1.0, 1.0)
    assert collapsed_terms["tanh"] > terms["tanh"] + 5


def test_select_pairs_class_top_k_reads_the_positive_weights():
    model = _pipnet(num_prototypes=4)
    with torch.no_grad():
        model.net.classification.weight.copy_(torch.tensor(
            [[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]]))
    x = torch.rand(3, 3, 32, 32)
    pairs = select_pairs(model, x, torch.tensor([0, 1, 2]), preset=AttackPreset(k=2, prototypes="class-top-k"))
    chosen = pairs.prototype.view(3, 2).tolist()
    assert [set(c) for c in chosen] == [{0, 1}, {1, 2}, {2, 3}]


PLAIN = {"part_jitter": 0, "colour_jitter": 15, "texture_jitter": 0, "lighting": 0, "blur": 0,
         "occluders": 0, "clutter": 0}
DATA = {"dataset": "synth", "num_classes": 4, "train_per_class": 40, "test_per_class": 20,
        "object_scale": [0.6, 0.8], "distractors": 1, "seed": 3, **PLAIN}


@pytest.fixture(scope="module")
def trained_pipnet(train_recipe):
    return train_recipe("tiny-pip", {
        "model": {"family": "pipnet", "backbone": "smallcnn", "img_size": 32, "num_prototypes": 16},
        "data": DATA,
        "train": {"seed": 0, "batch_size": 32, "pretrain_epochs": 2, "prototype_epochs": 2,
                  "epochs": 5, "finetune_epochs": 1,
                  "lr": {"features": 1e-3, "add_on_layers": 1e-3, "classifier": 0.05}}})


def test_pip_net_stages_run_in_order_and_learn(trained_pipnet):
    result, _ = trained_pipnet
    stages = [h.stage for h in result.history]
    assert stages == ["pretrain"] * 2 + ["prototypes"] * 2 + ["finetune"] + ["joint"] * 4
    assert result.test_accuracy >= 0.5  # chance 0.25 (4 classes)
    weights = result.model.net.classification.weight
    assert (weights >= 0).all()  # clipped at 0 after every step
    used = set((torch.relu(weights).amax(dim=0) > 0).nonzero().flatten().tolist())
    sources = {r.prototype for r in result.push_records}
    assert sources and sources <= used  # sources of the prototypes that count only


def test_early_backbone_stages_follow_the_original_groups():
    small = _pipnet().net.features  # three conv stages between max pools
    early = {id(p) for p in early_backbone_parameters(small)}
    stages = [[p for m in small.features[a:b] for p in m.parameters()] for a, b in ((0, 7), (7, 14), (14, 21))]
    assert all(id(p) in early for p in stages[0] + stages[1])
    assert not any(id(p) in early for p in stages[2])  # the last stage trains from the start
    resnet = _pipnet(backbone="resnet18").net.features
    early = {id(p) for p in early_backbone_parameters(resnet)}
    assert not any(id(p) in early for p in [*resnet.layer3.parameters(), *resnet.layer4.parameters()])
    assert all(id(p) in early for p in [*resnet.conv1.parameters(), *resnet.layer2.parameters()])
    vgg = _pipnet(backbone="vgg11").net.features  # five stages, each ending in a max pool
    early = {id(p) for p in early_backbone_parameters(vgg)}
    last_stage = [p for m in vgg.features[16:] for p in m.parameters()]  # two convolutions
    assert len(last_stage) == 4 and not any(id(p) in early for p in last_stage)
    assert len(early) == len(list(vgg.parameters())) - len(last_stage)
    assert early_backbone_parameters(torch.nn.Conv2d(3, 8, 3)) is None  # unknown layout


@pytest.mark.parametrize("freeze_epochs", [3, 1])
def test_early_stages_stay_frozen_until_freeze_epochs(monkeypatch, freeze_epochs):
    from protobench.training import recipe_data
    from protobench.training.recipe import recipe_from_dict

    recipe = recipe_from_dict("tiny-pip", {
        "model": {"family": "pipnet", "backbone": "smallcnn", "img_size": 32},
        "data": {**DATA, "train_per_class": 8, "test_per_class": 2},
        "train": {"seed": 0, "batch_size": 16, "pretrain_epochs": 0, "prototype_epochs": 1,
                  "epochs": 3, "finetune_epochs": 1, "freeze_epochs": freeze_epochs,
                  "lr": {"features": 1e-3, "add_on_layers": 2e-4, "classifier": 0.05}}})
    data = recipe_data(recipe)
    model = _pipnet(num_classes=4, num_prototypes=16)  # with an add-on convolution
    layers = model.net.features.features
    before = [layers[i].weight.detach().clone() for i in (0, 7, 14)]  # first conv of each stage
    loader = torch.utils.data.DataLoader(data.train, batch_size=16, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    made = []

    class Recorded(torch.optim.Adam):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(torch.optim, "Adam", Recorded)
    train_pipnet_stages(model, recipe, loader, data.push, lambda: 0.0, progress=False, log=lambda _: None)
    moved = [not torch.equal(b, layers[i].weight) for b, i in zip(before, (0, 7, 14))]
    # 3: frozen through all 3 epochs; 1: the 2 joint epochs after the finetune epoch train them
    assert moved == ([False, False, True] if freeze_epochs == 3 else [True, True, True])
    assert all(p.requires_grad for p in model.net.features.parameters())  # released afterwards
    # the original's rates: lr_net early, lr_block later, 10 x lr_block for the add-on
    add_on = model.net.add_on_layers[0].weight
    for opt in (made[0], made[1]):  # the prototype stage's, then the second phase's
        rates = {id(p): g["initial_lr"] for g in opt.param_groups for p in g["params"]}
        assert rates[id(layers[0].weight)] == 1e-3 and rates[id(layers[14].weight)] == 2e-4
        assert rates[id(add_on)] == pytest.approx(2e-3)


def test_pip_net_realism_has_no_distance_ratio(trained_pipnet):
    result, data = trained_pipnet
    report = model_realism(result.model, data.test)
    assert report.distance_ratio.n == 0
    assert 0 < report.top1_similarity.median <= 1  # a presence


def test_pip_net_refuses_adversarial_training(train_recipe):
    with pytest.raises(ProtobenchError, match="not built for PIP-Net"):
        train_recipe("tiny-pip", {
            "model": {"family": "pipnet", "backbone": "smallcnn", "img_size": 32},
            "data": DATA, "train": {"epochs": 1, "adversarial": "fgsm"}})


def test_attack_maps_are_the_log_odds_of_the_presence_and_peak_with_it():
    model = _pipnet().double()
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        scores = model.net.features(model.normalize(x))
        presence = torch.softmax(scores, dim=1)
        log_odds = model.attack_maps(x)
    torch.testing.assert_close(log_odds, torch.logit(presence), rtol=1e-9, atol=1e-9)
    # the same peak per prototype, the same order of cells
    assert torch.equal(log_odds.flatten(2).argmax(2), model.similarity_maps(x).flatten(2).argmax(2))
    assert torch.equal(log_odds.flatten(2).argsort(2), presence.flatten(2).argsort(2))


def test_attack_maps_stay_finite_where_the_presence_is_one():
    model = _pipnet()
    last = [m for m in model.net.features.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]
    with torch.no_grad():
        last.bias[0] = 200.0  # presence of channel 0 is 1.0 in float32 everywhere
        x = torch.rand(1, 3, 32, 32)
        assert torch.equal(model.similarity_maps(x)[:, 0], torch.ones(1, *model.similarity_maps(x).shape[-2:]))
        log_odds = model.attack_maps(x)
    assert torch.isfinite(log_odds).all()
    assert (log_odds[:, 0] > 100).all() and (log_odds[:, 1:] < -100).all()
