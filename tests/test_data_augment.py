import numpy as np
import pytest
import torch

from protobench.data.augment import (
    OPERATIONS, AugmentConfig, Augmented, augment, random_transform, rotation, shear, skew,
    warp_image, warp_mask,
)
from protobench.data.synth import SynthConfig, SynthDataset
from protobench.errors import ProtobenchError

CONFIG = SynthConfig(train_per_class=2, test_per_class=1, img_size=40)


@pytest.fixture(scope="module")
def dataset():
    return SynthDataset("train", CONFIG)


def test_deterministic_for_seed_index_and_epoch(dataset):
    a, b = Augmented(dataset, seed=5), Augmented(dataset, seed=5)
    for i in (0, 7, 19):
        assert torch.equal(a[i][0], b[i][0])
    a.set_epoch(3)
    b.set_epoch(3)
    assert torch.equal(a[4][0], b[4][0])
    # order of access does not matter
    c = Augmented(dataset, seed=5)
    c.set_epoch(3)
    _ = c[9]
    assert torch.equal(c[4][0], a[4][0])


def test_changes_with_epoch_and_seed(dataset):
    a = Augmented(dataset, seed=0)
    first = torch.stack([a[i][0] for i in range(len(a))])
    a.set_epoch(1)
    second = torch.stack([a[i][0] for i in range(len(a))])
    other = torch.stack([Augmented(dataset, seed=1)[i][0] for i in range(len(a))])
    assert not torch.equal(first, second) and not torch.equal(first, other)
    assert all(not torch.equal(x, dataset[i][0]) for i, x in enumerate(first))


def test_shape_range_and_labels(dataset):
    a = Augmented(dataset, seed=2)
    assert len(a) == len(dataset) and a.classes == dataset.classes and a.img_size == 40
    for i in range(len(a)):
        image, label = a[i]
        assert image.shape == (3, 40, 40) and image.dtype == torch.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert label == dataset[i][1]


def test_every_operation_and_flip_occur():
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(200):
        seen.add(random_transform(rng, 32, 32)[1])
    assert {op for op in seen if "+" not in op} == set(OPERATIONS)
    assert {op.split("+")[0] for op in seen if op.endswith("+flip")} == set(OPERATIONS)


def test_flip_mirrors_exactly(dataset):
    image = dataset[0][0]
    flip = np.array([[-1.0, 0, 40], [0, 1, 0], [0, 0, 1]])
    assert torch.allclose(warp_image(image, flip), image.flip(2), atol=1e-6)


def test_rotation_changes_the_image_and_zero_is_identity(dataset):
    image = dataset[0][0]
    assert torch.allclose(warp_image(image, rotation(0.0, 40, 40)), image, atol=1e-6)
    rotated = warp_image(image, rotation(15.0, 40, 40))
    assert (rotated - image).abs().mean() > 0.02
    # zoomed in so that the frame stays inside the source: the corners map inside it
    corners = np.array([[0, 0, 1], [40, 0, 1], [40, 40, 1], [0, 40, 1]], float).T
    source = np.linalg.inv(rotation(15.0, 40, 40)) @ corners
    assert (source[:2] >= -1e-6).all() and (source[:2] <= 40 + 1e-6).all()


def test_skew_and_shear_bounds():
    rng = np.random.default_rng(1)
    corners = np.array([[0, 0, 1], [40, 0, 1], [40, 40, 1], [0, 40, 1]], float).T
    for _ in range(50):
        moved = skew(rng, 0.2, 40, 40) @ corners
        moved = moved[:2] / moved[2]
        shift = np.abs(moved - corners[:2]).max()
        assert 1 - 1e-6 <= shift <= 8 + 1e-6  # 1 .. ceil(0.2 * 40) pixels
    assert np.allclose(shear(0.0, "x", 40, 40), np.eye(3))
    s = shear(10.0, "y", 40, 40)
    assert s[1, 0] != 0 and s[0, 1] == 0


def test_masks_follow_the_image(dataset):
    a = Augmented(dataset, seed=4)
    M, _ = a.transform(3)
    mask = a.relevance_mask(3)
    assert torch.equal(mask, warp_mask(dataset.relevance_mask(3), M))
    parts = a.part_masks(3)
    assert set(parts) == {"head", "wing", "pattern"}
    assert all(m.dtype == torch.bool for m in parts.values())


def test_augment_function_and_config():
    image = torch.rand(3, 24, 32)
    out = augment(image, np.random.default_rng(0), AugmentConfig(flip_probability=1.0))
    assert out.shape == (3, 24, 32)
    with pytest.raises(ProtobenchError):
        Augmented(SynthDataset("test", CONFIG), seed=-1)
