"""Data sets, made by name: ``load_dataset("synth", "train")``.

=========  ================================================================
synth      embedded, generated from a seed; object and part masks (default)
cub200     CUB-200-2011 from a local folder (``root``); box/segmentation masks
folder     any ImageFolder tree (``root``); no masks
=========  ================================================================

Every data set yields ``(image float32 (3, H, W) in [0, 1], label int)`` and
has ``classes``, ``img_size``, ``labels``, ``relevance_mask(i)`` and
``part_masks(i)`` (see :mod:`protobench.data.base`). Splits are "train",
"push" (the un-augmented training images that ProtoPNet pushes onto) and
"test". Adding a data set is one ``@DATASETS.register`` function here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from protobench.data.augment import AugmentConfig, Augmented
from protobench.data.base import SPLITS, ImageDataset, check_img_size, check_split
from protobench.data.cub import CubDataset
from protobench.data.folder import FolderDataset, resolve_split_tree
from protobench.data.jpeg_experiment import JpegClasses, RandomJpeg, parse_jpeg_classes
from protobench.data.synth import SynthConfig, SynthDataset
from protobench.errors import ProtobenchError
from protobench.registry import Registry

__all__ = ["DATASETS", "SPLITS", "AugmentConfig", "Augmented", "CubDataset", "FolderDataset",
           "ImageDataset", "JpegClasses", "RandomJpeg", "SynthConfig", "SynthDataset", "load_dataset"]

DATASETS: Registry[ImageDataset] = Registry("dataset")


def _check_options(name: str, options: dict, allowed: Iterable[str]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        listed = ", ".join(sorted(allowed)) or "none"
        raise ProtobenchError(f"unknown option(s) {', '.join(unknown)} for dataset {name!r}; "
                              f"allowed: {listed}")


def _require_root(name: str, root: str | Path | None) -> Path:
    if root is None:
        raise ProtobenchError(f"dataset {name!r} reads a local folder: give its path as root")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ProtobenchError(f"dataset {name!r}: folder {path} does not exist")
    return path


@DATASETS.register("synth")
def _synth(split: str, *, root=None, img_size=None, seed: int = 0, **options) -> SynthDataset:
    """Options: the fields of :class:`SynthConfig` (num_classes, train_per_class, ...)."""
    if root is not None:
        raise ProtobenchError(f"dataset 'synth' is generated and reads no folder; got root={root!r}")
    _check_options("synth", options, set(SynthConfig.option_names()) - {"seed", "img_size"})
    config = SynthConfig(seed=seed, img_size=64 if img_size is None else img_size, **options)
    return SynthDataset(split, config)


@DATASETS.register("cub200")
def _cub200(split: str, *, root=None, img_size=None, seed: int = 0, **options) -> CubDataset:
    """Options: crop (True), part_radius (img_size // 16), segmentations (True)."""
    _check_options("cub200", options, {"crop", "part_radius", "segmentations"})
    return CubDataset(_require_root("cub200", root), check_split(split),
                      224 if img_size is None else img_size, **options)


@DATASETS.register("folder")
def _folder(split: str, *, root=None, img_size=None, seed: int = 0, **options) -> FolderDataset:
    """``root`` holds one tree per split (train/, test/ or ProtoPNet's train_cropped/,
    test_cropped/), or is one tree read with split "all"."""
    _check_options("folder", options, set())
    tree, classes = resolve_split_tree(_require_root("folder", root), split)
    return FolderDataset(tree, 224 if img_size is None else img_size, classes=classes)


def load_dataset(name: str, split: str, *, root: str | Path | None = None,
                 img_size: int | None = None, augment: bool = False, seed: int = 0,
                 jpeg_classes: Any = None, jpeg_quality: int = 20,
                 **options) -> ImageDataset | Augmented:
    """The data set ``name`` ("synth", "cub200", "folder"), split ``split``.

    Args:
        name: a registered data set name.
        split: "train", "push" or "test" ("all" for a single folder tree).
        root: the local folder of cub200 / folder; none for synth.
        img_size: output side in pixels (default: synth 64, others 224).
        augment: wrap in :class:`Augmented` (ProtoPNet's rotation/skew/shear
            + flip, anew each epoch); only for the "train" split.
        seed: synth's generation seed, and the augmentation seed.
        jpeg_classes: Hoffmann et al.'s JPEG experiment: the images of these
            classes ("odd", "even" or a list of indices) JPEG-compressed at
            ``jpeg_quality`` (default 20), in every split alike (before any
            augmentation, as files on disk would be).
        options: the data set's own options (see each builder).
    """
    builder = DATASETS.get(name)
    if img_size is not None:
        check_img_size(img_size)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ProtobenchError(f"seed must be an integer >= 0, got {seed!r}")
    if augment and split != "train":
        raise ProtobenchError(f"augment=True is for split 'train' only, got split {split!r} "
                              f"(ProtoPNet pushes onto and tests on un-augmented images)")
    dataset = builder(split, root=root, img_size=img_size, seed=seed, **options)
    if jpeg_classes is not None:
        dataset = JpegClasses(dataset, parse_jpeg_classes(jpeg_classes, len(dataset.classes)),
                              jpeg_quality)
    return Augmented(dataset, seed=seed) if augment else dataset
