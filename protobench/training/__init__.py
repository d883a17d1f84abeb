"""Training ProtoPNet: losses, stages, push, recipes."""

from __future__ import annotations

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


def recipe_data(recipe: Recipe) -> RecipeData:
    """The train / push / test splits a recipe names, at the recipe's image size."""
    from protobench.data import load_dataset

    common = dict(root=recipe.data_root, img_size=recipe.architecture.img_size,
                  **recipe.data_options)  # [data] seed: generation and augmentation seed
    train = load_dataset(recipe.dataset, "train", augment=recipe.schedule.augment, **common)
    push = load_dataset(recipe.dataset, "push", **common)
    test = load_dataset(recipe.dataset, "test", **common)
    return RecipeData(train, push, test, list(push.classes))


@dataclass(frozen=True)
class DataSource:
    """The data set a trained model is evaluated on, at the model's image size."""

    dataset: str
    root: str | None
    img_size: int
    options: dict[str, Any] = field(default_factory=dict)

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
