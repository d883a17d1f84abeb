"""The attacks on the trained default model: they must beat the noise control.

Needs models/synth-smallcnn.pt (``python -m protobench.train --recipe
synth-smallcnn``); skipped only when that file is missing.
"""

import pytest
import torch

import protobench
from protobench.attacks import load_attack, noise_control, run_attack, select_pairs
from protobench.data import load_dataset
from protobench.metrics.per_pair import peak_moved
from protobench.paths import MODELS_DIR
from protobench.training import load_recipe

MODEL = "synth-smallcnn"
IMAGES = 24


@pytest.fixture(scope="module")
def trained():
    if not (MODELS_DIR / f"{MODEL}.pt").is_file():
        pytest.skip(f"models/{MODEL}.pt is not trained yet "
                    f"(python -m protobench.train --recipe {MODEL})")
    model = protobench.load(MODEL)
    recipe = load_recipe(MODEL)
    test = load_dataset(recipe.dataset, "test", img_size=model.img_size, **recipe.data_options)
    index = range(IMAGES)
    images = torch.stack([test[i][0] for i in index])
    labels = torch.tensor([test[i][1] for i in index])
    relevance = [test.relevance_mask(i) for i in index]
    return model, images, labels, relevance


def attack_and_control(trained, name):
    model, images, labels, relevance = trained
    preset = load_attack(name)
    pairs = select_pairs(model, images, labels, relevance, preset)
    [attacked] = run_attack(model, images, pairs, preset, torch.Generator().manual_seed(0))
    control = noise_control(model, images, pairs, preset, torch.Generator().manual_seed(0))
    with torch.no_grad():
        maps = [model.similarity_maps(r.x_adv)[torch.arange(len(pairs)), pairs.prototype]
                for r in (attacked, control)]
    return pairs, maps


@pytest.mark.slow
def test_pgd_local_moves_the_peak_far_more_often_than_noise(trained):
    pairs, (attacked, noise) = attack_and_control(trained, "pgd-local")
    moved = peak_moved(attacked, pairs.high_activation).float().mean().item()
    moved_by_noise = peak_moved(noise, pairs.high_activation).float().mean().item()
    assert moved >= moved_by_noise + 0.25, (moved, moved_by_noise)


@pytest.mark.slow
def test_pgd_suppress_lowers_the_similarity_far_more_than_noise(trained):
    pairs, (attacked, noise) = attack_and_control(trained, "pgd-suppress")
    before = pairs.sim_before.flatten(1).amax(1)
    drop = (before - attacked.flatten(1).amax(1)).mean().item()
    drop_by_noise = (before - noise.flatten(1).amax(1)).mean().item()
    assert drop > 0.1 and drop > 3 * abs(drop_by_noise), (drop, drop_by_noise)
