"""Noise augmentation (data/noise_augment.py): the budget, the region and the draws."""

import pytest
import torch

from protobench.data import load_dataset
from protobench.data.noise_augment import RandomNoise, noise_augment_settings
from protobench.errors import ProtobenchError
from protobench.training.recipe import recipe_from_dict


@pytest.fixture(scope="module")
def plain():
    return load_dataset("synth", "train", img_size=32, num_classes=2, train_per_class=6, seed=1)


def test_patch_noise_stays_in_its_square_and_within_eps(plain):
    noisy = RandomNoise(plain, p=1.0, eps=8 / 255, region="patch", size=(0.25, 0.5), seed=3)
    for i in range(len(plain)):
        clean, noised = plain[i][0], noisy[i][0]
        y0, y1, x0, x1 = noisy.noise_region(i, 32, 32)
        assert y1 - y0 == x1 - x0 and 8 <= y1 - y0 <= 16
        outside = torch.ones(32, 32, dtype=torch.bool)
        outside[y0:y1, x0:x1] = False
        assert torch.equal(noised[:, outside], clean[:, outside])
        change = (noised - clean)[:, ~outside]
        assert change.abs().max() <= 8 / 255 + 1e-6 and change.abs().max() > 4 / 255
        assert noised.min() >= 0 and noised.max() <= 1


def test_whole_image_noise_and_probability(plain):
    noisy = RandomNoise(plain, p=0.5, eps=4 / 255, region="image", seed=0)
    boxes = [noisy.noise_region(i, 32, 32) for i in range(len(plain))]
    assert set(boxes) == {None, (0, 32, 0, 32)}  # some images noised whole, some not
    none = RandomNoise(plain, p=0.0, eps=4 / 255)
    assert all(torch.equal(none[i][0], plain[i][0]) for i in range(3))


def test_each_epoch_draws_anew_and_the_same_epoch_again(plain):
    noisy = RandomNoise(plain, p=1.0, seed=0)
    first = noisy[0][0]
    noisy.set_epoch(1)
    assert not torch.equal(noisy[0][0], first)
    noisy.set_epoch(0)
    assert torch.equal(noisy[0][0], first)


@pytest.mark.parametrize("table, message", [
    ({"p": 2}, "p=2"), ({"eps": 0}, "eps"), ({"region": "box"}, "region='box'"),
    ({"size": [0.6, 0.3]}, "size"), ({"pp": 1}, "pp"), ("patch", "a table"),
])
def test_bad_settings_are_named(table, message):
    with pytest.raises(ProtobenchError, match=message):
        noise_augment_settings(table)


def test_a_recipe_wraps_its_training_images_only():
    from protobench.training import recipe_data

    recipe = recipe_from_dict("noisy", {
        "model": {"backbone": "smallcnn", "img_size": 32},
        "data": {"num_classes": 2, "train_per_class": 4, "test_per_class": 2},
        "train": {"noise_augment": {"p": 1.0, "eps": "8/255", "region": "image"}}})
    data = recipe_data(recipe)
    assert isinstance(data.train, RandomNoise) and data.train.eps == pytest.approx(8 / 255)
    assert not isinstance(data.push, RandomNoise) and not isinstance(data.test, RandomNoise)
