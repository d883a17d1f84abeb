"""The committed models: every recipe is valid, and every checkpoint was trained from its recipe as it stands."""

from pathlib import Path

import pytest

import protobench
from protobench.paths import MODELS_DIR, preset_names, read_toml
from protobench.training.recipe import load_recipe

RECIPES = preset_names(MODELS_DIR)
CHECKPOINTS = sorted(p.stem for p in MODELS_DIR.glob("*.pt"))
# the candidates and replicates that benchmarks/recipe_sweep.py trains (models/README.md)
CANDIDATES = sorted((Path(__file__).parents[1] / "benchmarks" / "recipes").glob("*.toml"))


def test_the_default_models_are_committed():
    assert {"synth-smallcnn", "synth-efficientnet-lite0", "synth-resnet18"} <= set(CHECKPOINTS)


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_is_valid(name):
    recipe = load_recipe(name)
    assert recipe.name == name and recipe.architecture.img_size > 0


@pytest.mark.parametrize("path", CANDIDATES, ids=lambda p: p.stem)
def test_every_candidate_recipe_is_valid(path):
    recipe = load_recipe(path)
    assert recipe.name == path.stem and recipe.schedule.epochs > 0


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_a_checkpoint_records_the_recipe_it_was_trained_from(name):
    # A recipe edited after its checkpoint was trained would describe another model:
    # README and models/README.md quote the checkpoint's numbers under the recipe's name.
    recipe_file = MODELS_DIR / f"{name}.toml"
    assert recipe_file.is_file(), f"models/{name}.pt has no recipe models/{name}.toml"
    model = protobench.load(name)
    assert model.meta.name == name
    assert model.meta.recipe == read_toml(recipe_file), (
        f"models/{name}.toml differs from the recipe its checkpoint records: retrain it "
        f"(python -m protobench.train --model {name}) or restore the recipe")
