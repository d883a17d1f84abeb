"""Training ProtoPNet: losses, stages, push, recipes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset

from protobench.training.recipe import Recipe, load_recipe


@dataclass
class RecipeData:
    train: Dataset      # augmented when the recipe says so
    push: Dataset       # the training images, never augmented
    test: Dataset
    classes: list[str]
    pretrain: Dataset | None = None  # the backbone's own data set ("other-classes"), else None


def recipe_data(recipe: Recipe) -> RecipeData:
    """The train / push / test splits a recipe names, at the recipe's image size."""
    from protobench.data import load_dataset

    common = dict(root=recipe.data_root, img_size=recipe.architecture.img_size,
                  **recipe.data_options)  # [data] seed: generation and augmentation seed
    train = load_dataset(recipe.dataset, "train", augment=recipe.schedule.augment, **common)
    if recipe.schedule.jpeg_augment is not None:  # the JPEG remedy: training images only
        from protobench.data.jpeg_experiment import RandomJpeg, jpeg_augment_settings
        p, quality = jpeg_augment_settings(recipe.schedule.jpeg_augment)
        train = RandomJpeg(train, p, quality, seed=int(recipe.data_options.get("seed", 0)))
    if recipe.schedule.noise_augment is not None:  # noise at the threat model's budget
        from protobench.data.noise_augment import RandomNoise, noise_augment_settings
        p, eps, region, size = noise_augment_settings(recipe.schedule.noise_augment)
        train = RandomNoise(train, p, eps, region, size, seed=int(recipe.data_options.get("seed", 0)))
    push = load_dataset(recipe.dataset, "push", **common)
    test = load_dataset(recipe.dataset, "test", **common)
    pretrain = None
    if recipe.schedule.pretrain_head == "other-classes" and recipe.schedule.pretrain_epochs:
        pretrain = other_classes_data(recipe, push)
    return RecipeData(train, push, test, list(push.classes), pretrain)


def other_classes_data(recipe: Recipe, task: Dataset) -> Dataset:
    """The "other-classes" pre-training set: synth classes the task does not have.

    ``recipe.schedule.pretrain_classes`` part combinations of the full
    palettes, none of them a class of ``task``, drawn with the recipe's seed;
    ``pretrain_images`` images in all, from another image seed than the
    task's ([data] seed + 1), augmented as the task's training images are.
    The task's look (variation, clutter, scale) is kept: the same kind of
    photographs, other species. No image, label or mask of the task is read.
    """
    import math

    from protobench.data import load_dataset
    from protobench.data.synth import other_classes
    from protobench.errors import ProtobenchError

    if recipe.dataset != "synth":
        raise ProtobenchError(f"pretrain_head = 'other-classes' draws other synth classes; the recipe's "
                              f"data set is {recipe.dataset!r} (use a pretrained backbone there)")
    sched = recipe.schedule
    names = other_classes(tuple(task.class_parts), sched.pretrain_classes, seed=sched.seed)
    options = {k: v for k, v in recipe.data_options.items()
               if k not in ("num_classes", "classes", "train_per_class", "test_per_class", "seed",
                            "jpeg_classes", "jpeg_quality")}  # the stand-in for ImageNet is clean
    seed = int(recipe.data_options.get("seed", 0)) + 1
    return load_dataset("synth", "train", img_size=recipe.architecture.img_size,
                        augment=sched.augment, seed=seed, classes=names,
                        train_per_class=math.ceil(sched.pretrain_images / len(names)), **options)


@dataclass(frozen=True)
class DataSource:
    """The data set a trained model is evaluated on, at the model's image size."""

    dataset: str
    root: str | None
    img_size: int
    options: dict[str, Any] = field(default_factory=dict)

    def without_jpeg(self) -> "DataSource":
        """The same data without the JPEG experiment's compression (its clean images)."""
        return dataclasses.replace(self, options={k: v for k, v in self.options.items()
                                                  if k not in ("jpeg_classes", "jpeg_quality")})

    def load(self, split: str) -> Dataset:
        from protobench.data import load_dataset
        return load_dataset(self.dataset, split, root=self.root, img_size=self.img_size, **self.options)


def model_data_source(model, dataset: str | None = None, data_root: str | None = None) -> DataSource | None:
    """``dataset`` when named, else the data set of the model's recipe; None when neither exists."""
    from protobench.training.recipe import recipe_from_dict

    if dataset is not None:
        return DataSource(dataset, data_root, model.img_size)
    if "model" not in model.meta.recipe:  # imported checkpoints record no recipe
        return None
    recipe = recipe_from_dict(model.meta.name, model.meta.recipe)
    return DataSource(recipe.dataset, data_root or recipe.data_root, model.img_size,
                      dict(recipe.data_options))


def model_split(model, split: str, dataset: str | None = None, data_root: str | None = None,
                name: str | None = None) -> tuple[DataSource, Dataset]:
    """The model's data source and one split of it, checked against the model's classes."""
    from protobench.errors import ProtobenchError

    name = name or model.meta.name or "the model"
    source = model_data_source(model, dataset, data_root)
    if source is None:
        raise ProtobenchError(f"model {name} records no data set; pass --dataset (and --data-root)")
    data = source.load(split)
    if len(data.classes) != len(model.meta.classes):
        raise ProtobenchError(f"model {name} has {len(model.meta.classes)} classes, the "
                              f"{source.dataset} data set {len(data.classes)}")
    return source, data


__all__ = ["DataSource", "Recipe", "RecipeData", "load_recipe", "model_data_source", "model_split", "recipe_data"]
