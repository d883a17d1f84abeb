"""cub200 on a tiny fake CUB-200-2011 tree in the published layout."""

import shutil
import warnings

import cv2
import numpy as np
import pytest
import torch

from protobench.data import load_dataset
from protobench.data.cub import CubDataset
from protobench.errors import ProtobenchError

CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
PARTS = ["back", "beak", "left eye"]
# per image: (class id, is_training, (width, height), box (x, y, w, h))
IMAGES = [
    (1, 1, (80, 60), (10.0, 5.0, 40.0, 30.0)),
    (1, 0, (64, 64), (0.0, 0.0, 32.0, 64.0)),
    (2, 1, (90, 50), (45.5, 10.25, 30.0, 20.0)),
    (2, 0, (60, 80), (5.0, 40.0, 50.0, 30.0)),
    (3, 1, (70, 70), (20.0, 20.0, 30.0, 30.0)),
    (3, 0, (50, 40), (10.0, 10.0, 20.0, 20.0)),
]
BIRD, SKY = (220, 30, 30), (30, 30, 220)  # RGB: the box is red, the rest blue


def image_path(k):
    class_id = IMAGES[k][0]
    return f"{CLASSES[class_id - 1]}/bird_{k + 1:04d}.jpg"


def write_cub(root, segmentations=False):
    (root / "parts").mkdir(parents=True)
    lines = {name: [] for name in ("images", "image_class_labels", "train_test_split",
                                   "bounding_boxes", "part_locs")}
    for k, (class_id, training, (w, h), (x, y, bw, bh)) in enumerate(IMAGES):
        image_id = k + 1
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[:] = SKY
        x0, y0, x1, y1 = int(x), int(y), int(np.ceil(x + bw)), int(np.ceil(y + bh))
        rgb[y0:y1, x0:x1] = BIRD
        path = root / "images" / image_path(k)
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if segmentations:  # the left half of the box
            seg = np.zeros((h, w), np.uint8)
            seg[y0:y1, x0:(x0 + x1) // 2] = 255
            seg_path = (root / "segmentations" / image_path(k)).with_suffix(".png")
            seg_path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(seg_path), seg)
        lines["images"].append(f"{image_id} {image_path(k)}")
        lines["image_class_labels"].append(f"{image_id} {class_id}")
        lines["train_test_split"].append(f"{image_id} {training}")
        lines["bounding_boxes"].append(f"{image_id} {x} {y} {bw} {bh}")
        # back at the box centre (visible), beak at the box corner (visible), eye invisible
        lines["part_locs"] += [f"{image_id} 1 {x + bw / 2} {y + bh / 2} 1",
                               f"{image_id} 2 {x} {y} 1",
                               f"{image_id} 3 0.0 0.0 0"]
    for name in ("images", "image_class_labels", "train_test_split", "bounding_boxes"):
        (root / f"{name}.txt").write_text("\n".join(lines[name]) + "\n")
    (root / "parts" / "part_locs.txt").write_text("\n".join(lines["part_locs"]) + "\n")
    (root / "classes.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(CLASSES, 1)))
    (root / "parts" / "parts.txt").write_text("".join(f"{i} {p}\n" for i, p in enumerate(PARTS, 1)))
    return root


@pytest.fixture
def cub(tmp_path):
    return write_cub(tmp_path / "CUB_200_2011")


def red_fraction(image):
    r, g, b = image
    return ((r > 0.6) & (b < 0.4)).float().mean().item()


def test_splits_labels_and_classes(cub):
    train, push, test = (CubDataset(cub, s, img_size=32) for s in ("train", "push", "test"))
    assert train.classes == CLASSES
    assert train.labels.tolist() == [0, 1, 2] and test.labels.tolist() == [0, 1, 2]
    assert [r.image_id for r in push.records] == [r.image_id for r in train.records] == [1, 3, 5]
    assert [r.image_id for r in test.records] == [2, 4, 6]
    image, label = train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label == 0
    assert 0 <= image.min() and image.max() <= 1
    assert train.skipped == []


def test_crop_mode_crops_to_the_box(cub):
    ds = CubDataset(cub, "train", img_size=32, crop=True, segmentations=False)
    for i in range(len(ds)):
        assert red_fraction(ds[i][0]) > 0.9
        mask = ds.relevance_mask(i)
        assert mask.dtype == torch.bool and mask.shape == (32, 32) and mask.all()


def test_full_mode_keeps_the_image_and_masks_the_box(cub):
    ds = CubDataset(cub, "train", img_size=40, crop=False)
    for i, k in enumerate((0, 2, 4)):
        image = ds[i][0]
        mask = ds.relevance_mask(i)
        (w, h), (x, y, bw, bh) = IMAGES[k][2], IMAGES[k][3]
        assert abs(mask.float().mean().item() - bw * bh / (w * h)) < 0.06
        red = image[0] > image[2]
        assert red[mask].float().mean() > 0.9  # the mask lies on the red bird
        assert (~red[~mask]).float().mean() > 0.9  # and the rest is sky


def test_segmentations_give_the_relevance_mask(tmp_path):
    root = write_cub(tmp_path / "CUB_200_2011", segmentations=True)
    crop = CubDataset(root, "train", img_size=32, crop=True)
    full = CubDataset(root, "train", img_size=40, crop=False)
    assert crop.segmentation_dir is not None
    for i in range(len(crop)):
        # the left half of the box
        assert 0.4 < crop.relevance_mask(i).float().mean().item() < 0.6
        assert crop.relevance_mask(i)[:, :12].all() and not crop.relevance_mask(i)[:, 20:].any()
    k = 0
    (w, h), (x, y, bw, bh) = IMAGES[k][2], IMAGES[k][3]
    assert abs(full.relevance_mask(0).float().mean().item() - bw * bh / 2 / (w * h)) < 0.05
    assert CubDataset(root, "train", img_size=32, segmentations=False).relevance_mask(0).all()


def test_part_locations_in_output_coordinates(cub):
    crop = CubDataset(cub, "train", img_size=32, crop=True)
    parts = crop.part_locations(0)
    assert set(parts) == {"back", "beak"}  # the eye is not visible
    assert parts["back"] == pytest.approx((16.0, 16.0), abs=0.6)
    assert parts["beak"] == pytest.approx((0.0, 0.0), abs=0.6)
    full = CubDataset(cub, "train", img_size=40, crop=False)
    (w, h), (x, y, bw, bh) = IMAGES[0][2], IMAGES[0][3]
    assert full.part_locations(0)["back"] == pytest.approx(
        ((x + bw / 2) * 40 / w, (y + bh / 2) * 40 / h))
    masks = full.part_masks(0)
    assert set(masks) == {"back", "beak"} and all(m.dtype == torch.bool for m in masks.values())
    bx, by = full.part_locations(0)["back"]
    assert masks["back"][round(by), round(bx)] and masks["back"].sum() < 40 * 40 / 10


def test_root_may_be_the_parent_folder(cub):
    ds = load_dataset("cub200", "test", root=cub.parent, img_size=24)
    assert isinstance(ds, CubDataset) and len(ds) == 3 and ds.img_size == 24


@pytest.mark.parametrize("name", ["images.txt", "image_class_labels.txt", "train_test_split.txt",
                                  "bounding_boxes.txt", "classes.txt", "parts/part_locs.txt"])
def test_missing_file_is_named(cub, name):
    (cub / name).unlink()
    with pytest.raises(ProtobenchError, match=name.replace(".", r"\.")):
        CubDataset(cub, "train")


@pytest.mark.parametrize("name, line", [
    ("bounding_boxes.txt", "3 45.5 10.25 thirty 20.0"),
    ("bounding_boxes.txt", "3 45.5 10.25 -1.0 20.0"),
    ("train_test_split.txt", "3 2"),
    ("image_class_labels.txt", "3"),
    ("parts/part_locs.txt", "3 1 4.0 5.0 1 extra"),
])
def test_malformed_line_is_named(cub, name, line):
    path = cub / name
    rows = path.read_text().splitlines()
    index = next(i for i, row in enumerate(rows) if row.startswith("3 "))
    rows[index] = line
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(ProtobenchError) as info:
        CubDataset(cub, "train")
    assert name in str(info.value) and f"line {index + 1}" in str(info.value)


def test_inconsistent_files_are_named(cub):
    rows = (cub / "bounding_boxes.txt").read_text().splitlines()
    (cub / "bounding_boxes.txt").write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(ProtobenchError, match="bounding_boxes.txt.*image id 6"):
        CubDataset(cub, "train")


def test_undecodable_image_is_skipped_and_counted(cub):
    bad = cub / "images" / image_path(2)  # train image of class 2
    bad.write_bytes(b"not a jpeg at all")
    with pytest.warns(UserWarning, match="skipped 1 image"):
        ds = CubDataset(cub, "train", img_size=16)
    assert ds.skipped == [bad]
    assert len(ds) == 2 and ds.labels.tolist() == [0, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CubDataset(cub, "test", img_size=16)  # the test split is untouched: no warning


def test_missing_image_file_is_skipped(cub):
    (cub / "images" / image_path(4)).unlink()
    with pytest.warns(UserWarning):
        ds = CubDataset(cub, "train", img_size=16)
    assert len(ds.skipped) == 1 and len(ds) == 2


def test_bad_root_and_options(tmp_path, cub):
    with pytest.raises(ProtobenchError, match="does not exist"):
        load_dataset("cub200", "train", root=tmp_path / "nowhere")
    with pytest.raises(ProtobenchError, match="root"):
        load_dataset("cub200", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProtobenchError, match="images.txt"):
        load_dataset("cub200", "train", root=tmp_path / "empty")
    with pytest.raises(ProtobenchError, match="crop"):
        load_dataset("cub200", "train", root=cub, cropped=True)
    with pytest.raises(ProtobenchError, match="crop='yes'"):
        load_dataset("cub200", "train", root=cub, crop="yes")
    with pytest.raises(ProtobenchError, match="part_radius=0"):
        load_dataset("cub200", "train", root=cub, part_radius=0)
    shutil.rmtree(cub / "images")
    with pytest.raises(ProtobenchError, match="decodable"), pytest.warns(UserWarning):
        CubDataset(cub, "train")
