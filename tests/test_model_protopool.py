"""ProtoPool: the network, its import from ProtoPool's code, its loss, push and pairs."""

import sys
from pathlib import Path

import pytest
import torch

import protobench
from protobench.attacks import AttackPreset
from protobench.attacks.pairs import select_pairs
from protobench.errors import ProtobenchError
from protobench.metrics.per_pair import prototype_rank
from protobench.model import Architecture, ProtoPNet
from protobench.model.legacy import LegacyAssumptionWarning
from protobench.training.losses import LossCoefficients, protopool_loss, slot_orthogonality
from protobench.training.push import push_prototypes
from protobench.model.families.protopool import gumbel_scale

FIXTURES = Path(__file__).parent / "fixtures"
STAND_INS = (FIXTURES / "original_protopool", FIXTURES / "original_protopnet")


@pytest.fixture
def original():
    """ProtoPool's stand-in (and the ProtoPNet backbone it uses), importable only here."""
    sys.path[:0] = [str(p) for p in STAND_INS]
    import protopool_model
    import resnet_features
    yield protopool_model, resnet_features
    for p in STAND_INS:
        sys.path.remove(str(p))
    for name in ("protopool_model", "resnet_features"):
        sys.modules.pop(name, None)


def _original_chooser(original, use_last_layer=True, use_thresh=False):
    protopool_model, resnet_features = original
    torch.manual_seed(0)
    features = resnet_features.ResNet_features(resnet_features.BasicBlock, [2, 2, 2, 2])
    net = protopool_model.PrototypeChooser(features, num_prototypes=6, num_descriptive=2,
                                           num_classes=4, proto_depth=32,
                                           use_last_layer=use_last_layer, use_thresh=use_thresh)
    with torch.no_grad():  # a trained model's slots: one clear winner each
        chosen = torch.tensor([[0, 1], [1, 2], [3, 4], [5, 0]])
        net.proto_presence.mul_(0.1)
        net.proto_presence[torch.arange(4).view(4, 1), chosen, torch.arange(2).view(1, 2)] += 1.0
        if use_last_layer:
            net.last_layer.weight.add_(0.3 * torch.randn_like(net.last_layer.weight))
    return net.eval()


@pytest.mark.parametrize("use_last_layer", [True, False])
def test_protopool_checkpoint_imports_with_identical_outputs(original, tmp_path, use_last_layer):
    net = _original_chooser(original, use_last_layer, use_thresh=True)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        logits, min_d, presence, slot_maps = net(x)
    original[0].save_model(net, tmp_path / "best_model.pth", 12)
    model = protobench.load(tmp_path / "best_model.pth", img_size=64, activation="log")
    assert model.family == "protopool"
    arch = model.meta.architecture
    assert (arch.family, arch.backbone, arch.num_prototypes, arch.prototypes_per_class) == \
        ("protopool", "resnet18", 6, 2)
    assert arch.use_last_layer is use_last_layer
    with torch.no_grad():
        ours_logits, ours_min_d = model.net(x)
        ours_maps = model.net.similarity_maps(x)
    torch.testing.assert_close(ours_logits, logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours_min_d, min_d, rtol=0, atol=1e-5)
    # the original's maps are per slot; ours per prototype, and the slots pick them
    slots = model.net.slot_prototypes.flatten()
    torch.testing.assert_close(ours_maps[:, slots], slot_maps, rtol=0, atol=1e-5)
    torch.testing.assert_close(model.net.presence(), presence, rtol=0, atol=0)
    # pixel space: the wrapper normalises as ProtoPool's training did
    torch.testing.assert_close(model(x * model.std + model.mean), logits, rtol=1e-4, atol=1e-4)


def test_protopool_bare_state_dict_imports_and_warns_of_what_it_assumed(original, tmp_path):
    net = _original_chooser(original)
    torch.save(net.state_dict(), tmp_path / "pool.pth")
    with pytest.warns(LegacyAssumptionWarning, match="image size 224"):
        model = protobench.load(tmp_path / "pool.pth")
    assert model.img_size == 224 and model.family == "protopool"


def test_a_protopool_checkpoint_that_does_not_fit_is_refused(original, tmp_path):
    net = _original_chooser(original)
    state = dict(net.state_dict())
    state["proto_presence"] = state["proto_presence"][:, :5]
    torch.save({"model_state_dict": state, "epoch": 1}, tmp_path / "bad.pth")
    with pytest.raises(ProtobenchError, match="do not fit together"):
        protobench.load(tmp_path / "bad.pth", img_size=64, activation="log")


def _pool(**kw):
    arch = dict(family="protopool", img_size=32, num_classes=3, prototypes_per_class=2,
                num_prototypes=4, prototype_depth=16)
    arch.update(kw)
    torch.manual_seed(0)
    return ProtoPNet.build(Architecture(**arch), classes=["a", "b", "c"], name="pool").eval()


def _assign(model, chosen):
    """Give slot (c, n) prototype chosen[c][n] (a clear winner)."""
    with torch.no_grad():
        pp = model.net.proto_presence
        pp.zero_()
        c, n = torch.tensor(chosen).shape
        pp[torch.arange(c).view(c, 1), torch.tensor(chosen), torch.arange(n).view(1, n)] = 1.0


def test_slots_are_one_hot_in_eval_and_say_which_classes_a_prototype_serves():
    model = _pool()
    _assign(model, [[0, 1], [1, 2], [1, 1]])
    presence = model.net.presence()
    assert set(presence.unique().tolist()) == {0.0, 1.0}
    assert (presence.sum(dim=1) == 1).all()
    relation = model.class_relation
    assert relation.tolist() == [[True, False, False], [True, True, True],
                                 [False, True, False], [False, False, False]]
    # main class: most slots (class 2 has two on prototype 1); -1 for a prototype in no slot
    assert model.prototype_class.tolist() == [0, 2, 1, -1]


@pytest.mark.parametrize("kw, match", [
    (dict(num_prototypes=0), "needs num_prototypes"),
    (dict(add_on_layers_type="regular"), "'linear'"),
    (dict(prototypes_per_class=5), "at least as many"),
    (dict(family="protofoo"), "unknown model family"),
])
def test_bad_protopool_architectures_are_refused(kw, match):
    with pytest.raises(ProtobenchError, match=match):
        _pool(**kw)


def test_protopnet_refuses_a_pool_size():
    with pytest.raises(ProtobenchError, match="ProtoPool's pool size"):
        Architecture(num_prototypes=30)


def test_slot_orthogonality_is_zero_for_distinct_slots_and_counts_shared_ones():
    distinct = torch.zeros(2, 4, 2)
    distinct[0, 0, 0] = distinct[0, 1, 1] = distinct[1, 2, 0] = distinct[1, 3, 1] = 1
    assert slot_orthogonality(distinct).item() == pytest.approx(0.0, abs=1e-6)
    shared = distinct.clone()
    shared[1, 3, 1], shared[1, 2, 1] = 0, 1  # class 1's slots on one prototype: 2 cosines of 1
    assert slot_orthogonality(shared).item() == pytest.approx(2 / 4)


def test_protopool_loss_terms_follow_the_slots():
    presence = torch.zeros(2, 4, 1)
    presence[0, 1, 0] = presence[1, 3, 0] = 1  # class 0 -> prototype 1, class 1 -> prototype 3
    min_d = torch.tensor([[5.0, 2.0, 1.0, 7.0], [4.0, 3.0, 6.0, 0.5]])
    labels = torch.tensor([0, 1])
    logits = torch.zeros(2, 2, requires_grad=True)
    loss, terms = protopool_loss(logits, min_d, labels, presence, presence, None,
                                 torch.eye(2), (4, 8, 1, 1), LossCoefficients())
    assert terms["clst"] == pytest.approx((2.0 + 0.5) / 2)  # own slot's prototype
    assert terms["sep"] == pytest.approx((1.0 + 3.0) / 2)   # nearest of the others
    assert terms["l1"] == 0.0
    loss.backward()
    assert logits.grad is not None


def test_gumbel_scale_rises_as_protopool_writes_it():
    assert gumbel_scale(0, 10) == pytest.approx(1000 * (1 / 10) ** 0.5)
    assert gumbel_scale(4, 10) == pytest.approx(1000 * (5 / 10) ** 0.5)
    assert gumbel_scale(9, 10) == 1000.0 and gumbel_scale(30, 10) == 1000.0


class _Images(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


def test_push_searches_every_class_a_shared_prototype_serves():
    model = _pool()
    _assign(model, [[0, 1], [1, 2], [3, 2]])  # prototype 1 serves classes 0 and 1
    torch.manual_seed(1)
    images = torch.rand(6, 3, 32, 32)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.no_grad():
        _, distances = model.net.push_forward(model.normalize(images))
    nearest = distances.flatten(2).amin(dim=2)  # (B, P)
    records = {r.prototype: r for r in push_prototypes(model, _Images(images, labels), batch_size=4)}
    assert records[1].image == int(nearest[:4, 1].argmin())  # among classes 0 and 1
    assert records[0].image == int(nearest[:2, 0].argmin())  # class 0 only
    assert labels[records[2].image] in (1, 2)


def test_class_top_k_chooses_among_every_prototype_a_class_uses():
    model = _pool()
    _assign(model, [[0, 1], [1, 2], [3, 2]])
    x = torch.rand(3, 3, 32, 32)
    labels = torch.tensor([0, 1, 2])
    pairs = select_pairs(model, x, labels, preset=AttackPreset(k=2, prototypes="class-top-k"))
    chosen = pairs.prototype.view(3, 2)
    served = {0: {0, 1}, 1: {1, 2}, 2: {2, 3}}
    for image, label in enumerate(labels.tolist()):
        assert set(chosen[image].tolist()) == served[label]


def test_prototype_rank_of_a_shared_prototype_counts_only_prototypes_of_no_common_class():
    relation = torch.tensor([[True, False], [True, True], [False, True]])
    sims = torch.tensor([[1.0, 2.0, 3.0]])
    # prototype 0 serves class 0; 1 shares it, so only prototype 2 is of another class
    assert prototype_rank(sims, torch.tensor([0]), relation).tolist() == [1]
    # prototype 1 shares a class with both: nothing outranks it from another class
    assert prototype_rank(sims, torch.tensor([1]), relation).tolist() == [0]


PLAIN = {"part_jitter": 0, "colour_jitter": 15, "texture_jitter": 0, "lighting": 0, "blur": 0,
         "occluders": 0, "clutter": 0}


def test_protopool_trains_through_every_stage_and_pushes_onto_its_classes_images(train_recipe):
    result, data = train_recipe("tiny-pool", {
        "model": {"family": "protopool", "backbone": "smallcnn", "img_size": 32, "num_prototypes": 6,
                  "prototypes_per_class": 2, "prototype_depth": 32},
        "data": {"dataset": "synth", "num_classes": 4, "train_per_class": 40, "test_per_class": 20,
                 "object_scale": [0.6, 0.8], "distractors": 1, "seed": 3, **PLAIN},
        "train": {"seed": 0, "batch_size": 32, "pretrain_epochs": 2, "epochs": 6, "warm_epochs": 1,
                  "gumbel_epochs": 3, "push_epochs": [5], "last_layer_epochs": 3,
                  "lr": {"features": 1e-3}}})
    stages = [h.stage for h in result.history]
    assert stages == ["pretrain"] * 2 + ["warm"] + ["joint"] * 5 + ["last"] * 3
    assert result.test_accuracy >= 0.35  # chance 0.25 (4 classes); measured 0.45
    relation = result.model.class_relation
    labels = torch.tensor([int(data.push[i][1]) for i in range(len(data.push))])
    for record in result.push_records:  # every source is an image of a class the prototype serves
        assert relation[record.prototype, labels[record.image]]
    assert {r.prototype for r in result.push_records} == set(relation.any(dim=1).nonzero().flatten().tolist())


def test_protopool_fine_tunes_its_last_layer_at_a_rate_falling_x095_every_5_epochs(
        train_recipe, monkeypatch):
    """gmum's main.py: adjust_learning_rate(push_optimizer, 0.95) after every 5th epoch."""
    from protobench.training import trainer

    rates, run_epoch = [], trainer.run_epoch

    def recording(model, loader, optimizer, coefs, stage, *args, **kwargs):
        if stage == "last":
            rates.append(optimizer.param_groups[0]["lr"])
        return run_epoch(model, loader, optimizer, coefs, stage, *args, **kwargs)

    monkeypatch.setattr(trainer, "run_epoch", recording)
    train_recipe("tiny-pool-decay", {
        "model": {"family": "protopool", "backbone": "smallcnn", "img_size": 32, "num_prototypes": 6,
                  "prototypes_per_class": 2, "prototype_depth": 16},
        "data": {"dataset": "synth", "num_classes": 4, "train_per_class": 10, "test_per_class": 5,
                 "object_scale": [0.6, 0.8], "distractors": 1, "seed": 3, **PLAIN},
        "train": {"seed": 0, "batch_size": 40, "epochs": 1, "warm_epochs": 1, "gumbel_epochs": 1,
                  "push_epochs": [0], "last_layer_epochs": 11, "lr": {"last_layer": 1e-3}}})
    expected = [1e-3] * 5 + [0.95e-3] * 5 + [0.95 ** 2 * 1e-3]
    assert rates == pytest.approx(expected, rel=1e-12)
