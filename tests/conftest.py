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


@pytest.fixture(scope="session")
def unseen_test_images():
    """``unseen_test_images(model, count) -> (images, labels, relevance masks)``: the model's
    synth test images from index 100 on, which no committed result uses."""
    from protobench.training import model_split

    def load(model, count: int):
        _, data = model_split(model, "test")
        idx = range(100, 100 + count)
        images = torch.stack([data[i][0] for i in idx])
        labels = torch.tensor([data[i][1] for i in idx])
        return images, labels, [data.relevance_mask(i) for i in idx]

    return load


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script(name) -> module``: research/<name>.py imported as a module (the
    scripts are not a package)."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).parents[1] / "research" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
