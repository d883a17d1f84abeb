"""folder: any ImageFolder tree."""

import warnings

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from protobench.data import load_dataset
from protobench.data.folder import FolderDataset
from protobench.errors import ProtobenchError


def write_tree(root, classes=("cat", "ant", "bee"), per_class=3):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for k in range(per_class):
            h, w = rng.integers(20, 60, 2)
            image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            cv2.imwrite(str(root / c / f"img{k}.{'png' if k % 2 else 'jpg'}"), image)
    return root


def test_classes_sorted_labels_and_items(tmp_path):
    root = write_tree(tmp_path / "tree")
    (root / "ant" / "notes.txt").write_text("not an image, ignored")
    (root / ".hidden").mkdir()
    ds = FolderDataset(root, img_size=28)
    assert ds.classes == ["ant", "bee", "cat"]
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and ds.skipped == []
    image, label = ds[4]
    assert image.shape == (3, 28, 28) and image.dtype == torch.float32 and label == 1
    assert 0 <= image.min() and image.max() <= 1
    assert ds.relevance_mask(0) is None and ds.part_masks(0) == {}
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 3, 28, 28) and y.tolist() == [0, 0, 0, 1]


def test_grey_image_becomes_rgb(tmp_path):
    root = tmp_path / "tree"
    (root / "a").mkdir(parents=True)
    cv2.imwrite(str(root / "a" / "grey.png"), np.full((10, 12), 128, np.uint8))
    image, _ = FolderDataset(root, img_size=16)[0]
    assert image.shape == (3, 16, 16) and torch.allclose(image, torch.full_like(image, 128 / 255))


def test_undecodable_file_is_skipped_and_counted(tmp_path):
    root = write_tree(tmp_path / "tree")
    bad = root / "bee" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    empty = root / "cat" / "empty.png"
    empty.write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2 image"):
        ds = FolderDataset(root, img_size=16)
    assert sorted(ds.skipped) == sorted([bad, empty])
    assert len(ds) == 9 and all(ds[i][0].shape == (3, 16, 16) for i in range(len(ds)))


def test_missing_or_empty_root(tmp_path):
    with pytest.raises(ProtobenchError, match="nowhere"):
        FolderDataset(tmp_path / "nowhere")
    with pytest.raises(ProtobenchError, match="nowhere"):
        load_dataset("folder", "all", root=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProtobenchError, match="no class sub-folders"):
        FolderDataset(tmp_path / "empty")
    (tmp_path / "empty" / "a").mkdir()
    with pytest.raises(ProtobenchError, match="no image files"):
        FolderDataset(tmp_path / "empty")
    with pytest.raises(ProtobenchError, match="root"):
        load_dataset("folder", "train")


def test_split_trees_share_one_class_list(tmp_path):
    write_tree(tmp_path / "data" / "train_cropped", classes=("a", "b", "c"))
    write_tree(tmp_path / "data" / "test_cropped", classes=("a", "c"), per_class=2)
    train = load_dataset("folder", "train", root=tmp_path / "data", img_size=20)
    push = load_dataset("folder", "push", root=tmp_path / "data", img_size=20)
    test = load_dataset("folder", "test", root=tmp_path / "data", img_size=20)
    assert train.classes == test.classes == ["a", "b", "c"]
    assert test.labels.tolist() == [0, 0, 2, 2]  # "c" keeps label 2 without "b"
    assert push.paths == train.paths
    aug = load_dataset("folder", "train", root=tmp_path / "data", img_size=20, augment=True)
    assert aug[0][0].shape == (3, 20, 20)


def test_split_tree_missing_and_all(tmp_path):
    root = write_tree(tmp_path / "tree")
    with pytest.raises(ProtobenchError, match="'test'.*all"):
        load_dataset("folder", "test", root=root)
    ds = load_dataset("folder", "all", root=root, img_size=12)
    assert len(ds) == 9 and ds.img_size == 12
    with pytest.raises(ProtobenchError, match="valid"):
        load_dataset("folder", "valid", root=root)
    with pytest.raises(ProtobenchError, match="crop"):
        load_dataset("folder", "all", root=root, crop=True)


def test_unlisted_class_is_an_error(tmp_path):
    root = write_tree(tmp_path / "tree", classes=("a", "b"))
    with pytest.raises(ProtobenchError, match="'b'"):
        FolderDataset(root, classes=["a"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert FolderDataset(root, classes=["a", "b", "z"]).classes == ["a", "b", "z"]


def test_the_benchmark_runs_on_a_plain_class_folder_with_split_all(tmp_path, capsys):
    """The error for a folder without a test tree says to use split 'all'; `run` has --split."""
    from protobench.cli.run import main
    root = write_tree(tmp_path / "tree", classes=[f"c{i}" for i in range(10)], per_class=1)
    common = ["--model", "synth-smallcnn", "--dataset", "folder", "--data-root", str(root),
              "--limit", "2", "--steps", "1", "--quiet", "--no-figures"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 2
    assert "(--split all)" in capsys.readouterr().err
    assert main([*common, "--split", "all", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "summary.csv").is_file()
