import os

import pytest
import torch

# Two cores: keep torch from oversubscribing them when pytest runs in parallel tools.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def train_recipe():
    """``train_recipe(name, raw) -> (TrainingResult, RecipeData)``: a recipe given as a dict
    (the TOML's tables), trained on the CPU without progress output."""
    from protobench.training import recipe_data
    from protobench.training.recipe import recipe_from_dict
    from protobench.training.trainer import train

    def run(name: str, raw: dict):
        recipe = recipe_from_dict(name, raw)
        data = recipe_data(recipe)
        result = train(recipe, data.train, data.push, data.test, data.classes, progress=False,
                       log=lambda _: None)
        return result, data

    return run
