"""Training ProtoPNet: losses, stages, push, recipes."""

from __future__ import annotations

from dataclasses import dataclass

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


__all__ = ["Recipe", "RecipeData", "load_recipe", "recipe_data"]
