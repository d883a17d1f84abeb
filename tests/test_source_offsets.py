"""Where prototype sources lie relative to the object (training/quality.py, research/source_offsets.py)."""

import pytest
import torch

import protobench
from protobench.training import model_data_source
from protobench.evaluation.quality import prototypes_on_object, source_distances


class Masks:
    """A push set of 10 x 10 images whose object fills columns 5-9."""

    def relevance_mask(self, i):
        mask = torch.zeros(10, 10, dtype=torch.bool)
        mask[:, 5:] = True
        return mask


def test_source_distances_are_pixels_from_the_box_centre_to_the_object():
    records = [{"image": 0, "high_activation_box": [1, 4, 1, 4]},   # centre (2, 2)
               {"image": 0, "high_activation_box": [0, 10, 4, 8]},  # centre (4, 5): on the object
               {"image": 0, "high_activation_box": [6, 7, 0, 1]}]   # centre (6, 0)
    assert source_distances(records, Masks()) == pytest.approx([3.0, 0.0, 5.0])
    assert prototypes_on_object(records, Masks()) == pytest.approx(1 / 3)


def test_offsets_add_up_to_the_models_on_object_share(benchmark_script):
    script = benchmark_script("source_offsets")
    model = protobench.load("synth-pipnet")
    found = script.offsets(model)
    off = found["sources"] - found["on_object"]
    assert found["within_cell"] + found["farther"] == off == len(found["off_distances"])
    push = model_data_source(model).load("push")
    assert found["on_object"] / found["sources"] == prototypes_on_object(model.meta.push_records, push)
    # models/README.md: every off-object source of PIP-Net lies within one 8 px cell of the object
    assert (found["sources"], found["on_object"], found["farther"], found["on_distractor"]) == (73, 52, 0, 0)


def test_distractor_masks_find_the_distractors_and_nothing_else(benchmark_script):
    script = benchmark_script("source_offsets")
    source = model_data_source(protobench.load("synth-pipnet"))
    push = source.load("push")
    masks = script.distractor_masks(source, push, grow=0)[:20]
    area = torch.stack(masks).float().mean().item()
    assert 0.01 < area < 0.2  # two loose parts per image, not the whole picture
    # drawn without distractors, nothing else changes: not one object pixel
    assert not any((m & push.relevance_mask(i)).any() for i, m in enumerate(masks))


def test_an_unknown_model_gets_one_error_and_a_non_zero_exit(capsys, benchmark_script):
    assert benchmark_script("source_offsets").main(["no-such-model"]) == 2
    assert "error: no-such-model" in capsys.readouterr().err
