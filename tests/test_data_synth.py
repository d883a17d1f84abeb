import itertools

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from protobench.data import DATASETS, load_dataset
from protobench.data import synth
from protobench.data.synth import REALISTIC, SynthConfig, SynthDataset, class_parts, generate
from protobench.data.synth_render import COLOURS, PATTERNS, SHAPES, Look, render_image
from protobench.errors import ProtobenchError

SMALL = SynthConfig(train_per_class=4, test_per_class=3, img_size=48)


def fresh(config: SynthConfig, split: str) -> torch.Tensor:
    """Images generated anew, bypassing the in-memory cache."""
    synth._split.cache_clear()
    return generate(config, split)[0]


def test_same_seed_gives_identical_images_and_masks():
    a = fresh(SMALL, "train")
    synth._split.cache_clear()
    images, seg, labels = generate(SMALL, "train")
    assert torch.equal(a, images)
    assert torch.equal(seg, generate(SMALL, "train")[1])  # and the cache returns the same


def test_different_seed_gives_different_images():
    other = SynthConfig(train_per_class=4, test_per_class=3, img_size=48, seed=1)
    a, b = fresh(SMALL, "train"), fresh(other, "train")
    assert a.shape == b.shape
    assert all(not torch.equal(x, y) for x, y in zip(a, b))


def test_push_is_train_and_test_is_disjoint():
    train, push, test = (SynthDataset(s, SMALL) for s in ("train", "push", "test"))
    assert torch.equal(train.images, push.images)
    assert torch.equal(train.segmentation, push.segmentation)
    train_hashes = {bytes(x.numpy()) for x in train.images}
    assert not any(bytes(x.numpy()) in train_hashes for x in test.images)
    assert len(train) == 4 * 10 and len(test) == 3 * 10


def test_item_shapes_dtypes_ranges_and_collate():
    ds = SynthDataset("test", SMALL)
    image, label = ds[0]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert isinstance(label, int) and label == int(ds.labels[0])
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (30, 3, 48, 48)
    assert ds.labels.dtype == torch.long and ds.img_size == 48
    assert torch.equal(ds[-1][0], ds[len(ds) - 1][0])
    with pytest.raises(IndexError):
        ds[len(ds)]
    x, y = next(iter(DataLoader(ds, batch_size=8)))
    assert x.shape == (8, 3, 48, 48) and y.dtype == torch.long


def test_masks_are_nonempty_and_nested():
    ds = SynthDataset("train", SMALL)
    for i in range(len(ds)):
        obj, parts = ds.relevance_mask(i), ds.part_masks(i)
        assert obj.dtype == torch.bool and obj.shape == (48, 48)
        assert set(parts) == {"head", "wing", "pattern"}
        assert obj.any() and not obj.all()
        for mask in parts.values():
            assert mask.dtype == torch.bool and mask.any()
            assert not (mask & ~obj).any()  # parts lie inside the object
        for a, b in itertools.combinations(parts.values(), 2):
            assert not (a & b).any()


def test_every_class_appears_equally():
    for split in ("train", "test"):
        ds = SynthDataset(split, SMALL)
        counts = torch.bincount(ds.labels, minlength=10)
        assert len(ds.classes) == 10 and (counts == counts[0]).all() and counts[0] > 0


def test_classes_are_distinct_part_combinations():
    for n in (10, 12, 20, 24, 40):
        parts = class_parts(n)
        assert len(set(parts)) == n
        if n <= 24:  # the Latin-square design: any two classes differ in two parts or more
            for a, b in itertools.combinations(parts, 2):
                assert sum(x != y for x, y in zip((a.head, a.wing, a.pattern),
                                                   (b.head, b.wing, b.pattern))) >= 2
    # no single part value decides a class: each one is shared by several classes
    parts = class_parts(10)
    for attribute in ("head", "wing", "pattern"):
        values = [getattr(p, attribute) for p in parts]
        assert min(values.count(v) for v in set(values)) >= 2
    assert SynthDataset("test", SMALL).classes[0] == parts[0].name


def test_wing_pixels_carry_the_class_colour():
    ds = SynthDataset("test", SMALL)
    palette = np.array(list(COLOURS.values()), float)
    names = list(COLOURS)
    for i in range(len(ds)):
        wing = ds.part_masks(i)["wing"]
        mean = ds.images[i].permute(1, 2, 0)[wing].float().mean(0).numpy()
        nearest = names[np.argmin(((palette - mean) ** 2).sum(1))]
        assert nearest == ds.class_parts[int(ds.labels[i])].wing


def test_mean_colour_does_not_predict_the_class():
    config = SynthConfig(train_per_class=30, test_per_class=20, img_size=32)
    train, test = SynthDataset("train", config), SynthDataset("test", config)
    f_train = train.images.float().mean((2, 3))
    f_test = test.images.float().mean((2, 3))
    centroids = torch.stack([f_train[train.labels == c].mean(0) for c in range(10)])
    predicted = torch.cdist(f_test, centroids).argmin(1)
    accuracy = (predicted == test.labels).float().mean().item()
    assert accuracy < 0.5


def test_background_and_distractors_do_not_depend_on_the_class():
    # The same random stream drawn for two classes gives the same scene around the object.
    kwargs = dict(img_size=48, supersample=4, object_scale=(0.45, 0.65), max_rotation=20.0,
                  distractors=4, noise_std=0.0, shapes=SHAPES[:4], colours=list(COLOURS)[:4],
                  patterns=PATTERNS[:3])
    a_parts, b_parts = class_parts(10)[0], class_parts(10)[1]
    same = []
    for seed in range(6):
        a, seg_a = render_image(np.random.default_rng(seed), a_parts, **kwargs)
        b, seg_b = render_image(np.random.default_rng(seed), b_parts, **kwargs)
        assert not np.array_equal(a, b)
        outside = cv2.dilate(((seg_a > 0) | (seg_b > 0)).astype(np.uint8), np.ones((5, 5))) == 0
        same.append((a == b).all(-1)[outside].mean())
    # equal, except where the object's outline moved a distractor to another free place
    assert np.mean(same) > 0.9


def test_object_scale_and_image_size_options():
    ds = SynthDataset("test", SynthConfig(img_size=40, test_per_class=2, object_scale=(0.5, 0.5)))
    assert ds.images.shape == (20, 3, 40, 40) and ds.segmentation.shape == (20, 40, 40)
    for i in range(len(ds)):  # the object's length is half the side, whatever its rotation
        ys, xs = ds.relevance_mask(i).nonzero(as_tuple=True)
        extent = max(xs.max() - xs.min(), ys.max() - ys.min()).item() + 1
        assert 0.4 * 40 <= extent <= 0.65 * 40


@pytest.mark.parametrize("option", [
    dict(num_classes=1), dict(num_classes=1000), dict(train_per_class=0), dict(img_size=4),
    dict(object_scale=(0.7, 0.3)), dict(object_scale=0.5), dict(distractors=-1),
    dict(seed=-3), dict(max_rotation="a"), dict(part_jitter=0.9), dict(colour_jitter=-1),
    dict(texture_jitter=2), dict(lighting=True), dict(blur=5), dict(occluders=-1),
    dict(clutter=1.5), dict(classes=("star-cyan-bars", "bird-red-spots")),
    dict(classes=("star-cyan-bars",)), dict(classes=("star-cyan-bars", "circle-red-spots"), num_classes=5),
])
def test_bad_config_is_a_user_error(option):
    with pytest.raises(ProtobenchError) as info:
        SynthConfig(**option)
    assert next(iter(option)) in str(info.value)


def test_load_dataset_synth():
    ds = load_dataset("synth", "test", img_size=32, test_per_class=2, num_classes=12)
    assert isinstance(ds, SynthDataset) and len(ds) == 24 and ds.img_size == 32
    assert ds.config.num_classes == 12
    again = load_dataset("synth", "test", img_size=32, test_per_class=2, num_classes=12)
    assert again.images is ds.images  # generated once, cached
    aug = load_dataset("synth", "train", img_size=32, train_per_class=2, augment=True, seed=3)
    assert aug.seed == 3 and aug[0][0].shape == (3, 32, 32)


def test_load_dataset_errors():
    with pytest.raises(ProtobenchError, match="cub200, folder, synth"):
        load_dataset("imagenet", "train")
    with pytest.raises(ProtobenchError, match="valid"):
        load_dataset("synth", "valid")
    with pytest.raises(ProtobenchError, match="colour"):
        load_dataset("synth", "train", colour=3)
    with pytest.raises(ProtobenchError, match="root"):
        load_dataset("synth", "train", root="/tmp")
    with pytest.raises(ProtobenchError, match="augment"):
        load_dataset("synth", "test", augment=True)
    with pytest.raises(ProtobenchError, match="img_size"):
        load_dataset("synth", "test", img_size=2)
    assert list(DATASETS) == ["cub200", "folder", "synth"]


RENDER = dict(img_size=48, supersample=4, object_scale=(0.6, 0.8), max_rotation=20.0,
              distractors=2, noise_std=0.0, shapes=SHAPES[:4], colours=list(COLOURS)[:4],
              patterns=PATTERNS[:3])


def test_occluders_are_not_object_and_hide_at_most_part_of_each_part():
    parts = class_parts(10)[0]
    hidden = 0
    for seed in range(12):
        bare, seg_bare = render_image(np.random.default_rng(seed), parts, **RENDER,
                                      look=Look(clutter=4))
        img, seg = render_image(np.random.default_rng(seed), parts, **RENDER,
                                look=Look(clutter=4, occluders=3))
        # the same scene and object; occluders only take pixels away from the object
        assert not ((seg > 0) & (seg_bare == 0)).any()
        lost = (seg == 0) & (seg_bare > 0)
        hidden += lost.sum()
        if lost.any():
            assert (img[lost] != bare[lost]).any(-1).mean() > 0.8  # drawn over, now background
        for label in (2, 3, 4):  # head, wing, pattern: most of each stays visible
            assert (seg == label).sum() >= 0.5 * (seg_bare == label).sum()
    assert hidden > 0


def test_images_of_one_class_vary_in_part_colour_size_and_light():
    config = SynthConfig(train_per_class=12, test_per_class=1, img_size=48, **REALISTIC)
    plain = SynthConfig(train_per_class=12, test_per_class=1, img_size=48, colour_jitter=0,
                        noise_std=0)  # the defaults: no variation

    def wing_stats(cfg):
        ds = SynthDataset("train", cfg)
        rows = (ds.labels == 0).nonzero().flatten()
        colours = torch.stack([ds.images[i].permute(1, 2, 0)[ds.part_masks(i)["wing"]].float().mean(0)
                               for i in rows])
        # wing area relative to the body's, free of the object's own scale
        ratios = torch.tensor([(ds.segmentation[i] == 3).sum().item() /
                               (ds.segmentation[i] > 0).sum().item() for i in rows])
        return colours.std(0).max().item(), ratios.std().item() / ratios.mean().item()

    colour_spread, size_spread = wing_stats(config)
    plain_colour, plain_size = wing_stats(plain)
    assert plain_colour < 4.0  # one colour per class without variation (edge pixels blend)
    assert colour_spread > 10.0 and colour_spread > 3 * plain_colour
    assert size_spread > 1.5 * plain_size


def test_variation_keeps_the_class_decided_by_the_parts():
    """Jitter stays within a class: a wing's colour is still nearest its class colour."""
    options = {**REALISTIC, "lighting": 0, "blur": 0}
    ds = SynthDataset("test", SynthConfig(test_per_class=10, img_size=48, **options))
    palette = np.array(list(COLOURS.values()), float)
    names = list(COLOURS)
    hits = [names[np.argmin(((palette - ds.images[i].permute(1, 2, 0)[ds.part_masks(i)["wing"]]
                                 .float().mean(0).numpy()) ** 2).sum(1))]
            == ds.class_parts[int(ds.labels[i])].wing for i in range(len(ds))]
    assert np.mean(hits) == 1.0


def test_realistic_options_are_valid_and_the_defaults_are_plain():
    assert SynthConfig().look().clutter == 0 and SynthConfig().look().part_jitter == 0
    look = SynthConfig(**REALISTIC).look()
    assert look.clutter == REALISTIC["clutter"] and look.lighting == REALISTIC["lighting"]


def test_named_classes_draw_those_part_combinations():
    names = ("star-cyan-bars", "circle-red-spots", "cross-magenta-checks")
    config = SynthConfig(classes=list(names), train_per_class=2, test_per_class=1, img_size=48)
    assert config.num_classes == 3 and config.classes == names
    data = SynthDataset("train", config)
    assert data.classes == list(names) and len(data) == 6
    # the wing carries the named colour: cyan for class 0
    seg, image = data.segmentation[0].numpy(), data.images[0].permute(1, 2, 0).numpy().astype(float)
    wing = image[seg == 3].mean(0)
    assert np.abs(wing - COLOURS["cyan"]).sum() < np.abs(wing - COLOURS["red"]).sum()


def test_other_classes_avoid_the_task_and_depend_on_the_seed():
    task = class_parts(10)
    drawn = synth.other_classes(task, 40, seed=0)
    assert len(set(drawn)) == 40 and not set(drawn) & {p.name for p in task}
    assert synth.other_classes(task, 40, seed=0) == drawn != synth.other_classes(task, 40, seed=1)
    with pytest.raises(ProtobenchError, match="cannot draw 200 other classes"):
        synth.other_classes(task, 200, seed=0)


def test_images_are_drawn_when_first_read_and_equal_the_whole_split():
    config = SynthConfig(num_classes=3, train_per_class=4, test_per_class=2, img_size=40, **REALISTIC)
    synth._split.cache_clear()
    data = SynthDataset("test", config)
    image, label = data[4]
    mask = data.relevance_mask(5)
    assert synth._split(config, 1).drawn.sum() == 2  # images 4 and 5, not the split
    assert len(data) == 6 and label == 4 % 3
    everything, segmentation, _ = fresh_split(config, "test")
    assert torch.equal((image * 255).round().byte(), everything[4])
    assert torch.equal(mask, segmentation[5] > 0)
    assert torch.equal(data.images, everything)  # the rest drawn on demand


def fresh_split(config, split):
    synth._split.cache_clear()
    return generate(config, split)
