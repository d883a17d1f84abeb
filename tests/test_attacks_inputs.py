"""The attack functions refuse images they cannot attack meaningfully (issue 14)."""

import pytest
import torch

import protobench
from protobench.attacks import load_attack, noise_control, run_attack, select_pairs
from protobench.errors import ProtobenchError
from protobench.paths import MODELS_DIR

pytestmark = [pytest.mark.faults, pytest.mark.skipif(not (MODELS_DIR / "synth-smallcnn.pt").exists(),
                                                     reason="needs the committed model models/synth-smallcnn.pt")]


@pytest.fixture(scope="module")
def setup():
    model = protobench.load("synth-smallcnn")
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    preset = load_attack("pgd-local", steps=1)
    pairs = select_pairs(model, images, torch.tensor([0, 1]), None, preset)
    return model, images, preset, pairs


def _bad(images, which):
    images = images.clone()
    if which == "inf":
        images[1, 0, 3, 3] = float("inf")
    elif which == "nan":
        images[1, 2, 0, 0] = float("nan")
    elif which == "above":
        images[1] *= 4
    elif which == "uint8":
        images = (images * 255).byte()
    elif which == "size":
        images = torch.nn.functional.interpolate(images, size=(48, 48))
    elif which == "channels":
        images = images[:, :1]
    return images


MESSAGES = {"inf": "image 1 holds a NaN or infinite value", "nan": "image 1 holds a NaN or infinite value",
            "above": "image 1 has values in", "uint8": "torch.uint8; give floats in [0, 1]",
            "size": "48x48 px, the model takes 64x64", "channels": "must be (B, 3, H, W)"}


@pytest.mark.parametrize("which", list(MESSAGES))
def test_every_entry_point_names_the_bad_images(setup, which):
    model, images, preset, pairs = setup
    bad = _bad(images, which)
    for call in (lambda: select_pairs(model, bad, torch.tensor([0, 1]), None, preset),
                 lambda: run_attack(model, bad, pairs, preset),
                 lambda: noise_control(model, bad, pairs, preset)):
        with pytest.raises(ProtobenchError, match=MESSAGES[which].replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            call()


def test_valid_images_pass(setup):
    model, images, preset, pairs = setup
    result = noise_control(model, images, pairs, preset)
    assert result.x_adv.shape == (len(pairs.image_index), 3, 64, 64)
