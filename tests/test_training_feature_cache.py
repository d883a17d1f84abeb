"""Training on cached features (training/feature_cache.py): the same model as the plain
loop where the two must agree, only the last blocks learn, and the mistakes are named."""

import pytest
import torch

from protobench.errors import ProtobenchError
from protobench.model.backbones import create_backbone
from protobench.training import recipe_data
from protobench.training.feature_cache import split_backbone
from protobench.training.recipe import check_trainable, recipe_from_dict
from protobench.training.trainer import train
from test_training_trainer import TINY

SHORT = {**TINY, "train": {**TINY["train"], "pretrain_epochs": 1, "epochs": 3, "warm_epochs": 1,
                           "push_epochs": [2], "last_layer_epochs": 2, "augment": False}}


def _with(**train_options):
    return {**SHORT, "train": {**SHORT["train"], **train_options}}


def _train(raw):
    recipe = recipe_from_dict("cache", raw)
    data = recipe_data(recipe)
    return train(recipe, data.train, data.push, data.test, data.classes, progress=False,
                 log=lambda _: None)


@pytest.mark.parametrize("trainable_blocks", [0, 1])
def test_one_cached_copy_without_augmentation_trains_the_plain_loops_model(trainable_blocks):
    """Without augmentation every epoch sees the same images, so a cache of one copy must
    give the model of the uncached training (same batches, same frozen statistics)."""
    plain = _train(_with(trainable_blocks=trainable_blocks))
    cached = _train(_with(trainable_blocks=trainable_blocks, cached_augmentations=1))
    for (name, a), b in zip(plain.model.state_dict().items(), cached.model.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=name)
    assert cached.test_accuracy == plain.test_accuracy
    assert [h.stage for h in cached.history] == [h.stage for h in plain.history]
    assert [(r.image, r.cell) for r in cached.push_records] == \
        [(r.image, r.cell) for r in plain.push_records]


def test_only_the_last_blocks_learn_and_batchnorm_statistics_stay():
    """No pre-training here, so the trainer's seeded initial network is the start."""
    import dataclasses

    from protobench.model.classifier import ProtoPNet
    from protobench.training.trainer import seed_everything

    recipe = recipe_from_dict("cache", _with(trainable_blocks=1, cached_augmentations=2,
                                             augment=True, pretrain_epochs=0))
    data = recipe_data(recipe)
    seed_everything(recipe.schedule.seed)
    arch = dataclasses.replace(recipe.architecture, num_classes=len(data.classes))
    start = ProtoPNet.build(arch, data.classes).net.features.state_dict()
    trained = train(recipe, data.train, data.push, data.test, data.classes, progress=False,
                    log=lambda _: None)
    after = trained.model.net.features.state_dict()
    # the small CNN's third stage is features.14 .. features.20
    tail = tuple(f"features.{i}." for i in range(14, 21))
    for name, value in after.items():
        learns = name.startswith(tail) and "running" not in name and "num_batches" not in name
        assert (not torch.equal(value, start[name])) == learns, name


def test_the_last_layer_and_test_passes_read_the_cache_not_the_images(monkeypatch):
    """With a cache, the training images go through the backbone once per copy, never per epoch."""
    from protobench.model.backbones import SmallCNN

    calls = []
    real = SmallCNN.forward
    monkeypatch.setattr(SmallCNN, "forward", lambda self, x: calls.append(len(x)) or real(self, x))
    raw = _with(trainable_blocks=0, cached_augmentations=2, epochs=4, push_epochs=[3],
                last_layer_epochs=3)
    recipe = recipe_from_dict("cache", raw)
    data = recipe_data(recipe)
    trained = train(recipe, data.train, data.push, data.test, data.classes, progress=False,
                    log=lambda _: None)
    n_train, n_test, n_push = len(data.train), len(data.test), len(data.push)
    pretrain = sum(len(data.train) for _ in range(recipe.schedule.pretrain_epochs))
    assert sum(calls) == pretrain + 2 * n_train + n_test + n_push  # two copies, test, one push
    assert trained.test_accuracy > 0.25  # above chance (4 classes)


def test_split_backbone_composes_to_the_whole():
    net = create_backbone("smallcnn").eval()
    x = torch.rand(2, 3, 32, 32)
    for k in (0, 1, 2, 3):
        frozen, tail = split_backbone(net, k)
        with torch.no_grad():
            torch.testing.assert_close(tail(frozen(x)), net(x))
    with pytest.raises(ProtobenchError, match="has 3 blocks"):
        split_backbone(net, 4)
    with pytest.raises(ProtobenchError, match="does not list its blocks"):
        split_backbone(create_backbone("vgg11"), 2)


@pytest.mark.parametrize("options, message", [
    ({"cached_augmentations": 2}, "needs a frozen part"),
    ({"cached_augmentations": 1, "trainable_blocks": 0, "mixup": 0.5}, "mixup"),
    ({"cached_augmentations": 1, "trainable_blocks": 0, "adversarial": "fgsm"}, "adversarial"),
    ({"trainable_blocks": -2}, "trainable_blocks=-2"),
])
def test_cache_mistakes_are_named(options, message):
    with pytest.raises(ProtobenchError, match=message):
        recipe_from_dict("bad", _with(**options))


def test_pipnet_refuses_the_cache():
    raw = {**_with(trainable_blocks=0, cached_augmentations=1),
           "model": {**SHORT["model"], "family": "pipnet"}}
    with pytest.raises(ProtobenchError, match="PIP-Net"):
        check_trainable(recipe_from_dict("bad", raw))
