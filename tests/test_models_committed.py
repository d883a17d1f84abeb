"""The committed models: every recipe is valid, and every checkpoint was trained from its recipe as it stands."""

from pathlib import Path

import pytest

import protobench
from protobench.paths import MODELS_DIR, preset_names, read_toml
from protobench.training.recipe import load_recipe

RECIPES = preset_names(MODELS_DIR)
CHECKPOINTS = sorted(p.stem for p in MODELS_DIR.glob("*.pt"))
# the candidates and replicates that research/recipe_sweep.py trains (models/README.md)
CANDIDATES = sorted((Path(__file__).parents[1] / "research" / "recipes").glob("*.toml"))


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
        f"(python -m protobench.train --recipe {name}) or restore the recipe")


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_every_checkpoint_has_a_card_of_these_very_weights(name):
    """models/cards/NAME.md, written by `protobench evaluate --model NAME --card` (make cards),
    names the sha256 of the checkpoint it measured: a retrained model needs a new card."""
    from protobench.paths import CARDS_DIR, file_digest

    card = CARDS_DIR / f"{name}.md"
    assert card.is_file(), f"models/{name}.pt has no card: make cards (or protobench evaluate --model {name} --card)"
    text = card.read_text()
    assert f"| sha256 | `{file_digest(MODELS_DIR / f'{name}.pt')}` |" in text, (
        f"{card} describes other weights than models/{name}.pt: write it again (make cards)")
    history = protobench.load(name).meta.history
    assert f"| test accuracy | {100 * history['test_accuracy']:.1f}% |" in text


def test_a_card_renders_the_checkpoint_and_its_evaluation():
    from protobench.report import model_card

    meta = {"name": "m", "classes": ["a", "b"], "architecture": {"family": "protopnet", "backbone": "smallcnn",
            "img_size": 64, "num_prototypes": 4, "prototypes_per_class": 2},
            "recipe": {"description": "a tiny model", "data": {"dataset": "synth", "seed": 3}},
            "history": {"train_seconds": 125.0}}
    evaluation = {"dataset": "synth", "images": 20, "accuracy": 0.85, "prototypes_on_object": 0.75,
                  "realism": {"top1_similarity": {"q25": 1.0, "median": 2.0, "q75": 3.0, "n": 20},
                              "distance_ratio": {"q25": None, "median": None, "q75": None, "n": 0}},
                  "noise_stability": {"eps": 8 / 255, "peak_stays_in_r": 0.9, "peak_stays_in_r_ci": [0.7, 0.97],
                                      "prediction_kept": 1.0, "prediction_kept_ci": [0.83, 1.0]},
                  "latent_saturation": 0.25, "jpeg": None}
    card = model_card(meta, evaluation, "ab" * 32, "models/m.pt", "protobench evaluate --model m --card", 4)
    for line in ["# m", "a tiny model", "| sha256 | `" + "ab" * 32 + "` |", "| family | protopnet |", "| prototypes | 4 (2 per class) |",
                 "| data | synth, 20 test images, data seed 3 |", "| training time | 125 s (2 min 5 s) |",
                 "| training device | not recorded in the checkpoint |", "| test accuracy | 85.0% |",
                 "| prototypes on the object (their high-activation box centre) | 75% |",
                 "| clean top-1 similarity, median [quartiles] | 2.00 [1.00, 3.00] |",
                 "| d(best irrelevant cell) / d(best cell) | - |",
                 "| noise control (8/255 in the top-1 box): peak stays in R | 90% [70%, 97%] |",
                 "| latent saturation (mean \\|z - 0.5\\|) | 0.25 |", "protobench train --recipe m"]:
        assert line in card, line
