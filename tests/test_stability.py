"""A model's noise stability and latent saturation (protobench.evaluation.stability)."""

import pytest
import torch

from protobench.evaluation.stability import latent_saturation, noise_stability


@pytest.fixture(scope="module")
def smallcnn_and_data():
    import protobench
    from protobench.training import model_split

    model = protobench.load("synth-smallcnn")
    _, data = model_split(model, "test")
    return model, data


def test_noise_stability_is_the_runners_noise_control(smallcnn_and_data):
    """The committed results: synth-smallcnn keeps every prediction under the noise control
    at 8/255, and its peak leaves R for none of the 32 headline images."""
    model, data = smallcnn_and_data
    stability = noise_stability(model, data, count=32)
    assert stability.images == 32
    assert stability.prediction_kept == 1.0
    assert stability.peak_stays_in_r == 1.0
    lo, hi = stability.prediction_kept_ci
    assert hi == 1.0 and 0.85 < lo < 0.9  # Wilson at 32 of 32
    assert stability.to_dict()["prediction_kept_ci"] == [lo, hi]


def test_more_noise_moves_more(smallcnn_and_data):
    model, data = smallcnn_and_data
    mild = noise_stability(model, data, count=16, eps=8 / 255)
    harsh = noise_stability(model, data, count=16, eps=0.5)
    assert harsh.peak_stays_in_r + harsh.prediction_kept < mild.peak_stays_in_r + mild.prediction_kept


def test_latent_saturation_of_a_sigmoid_latent(smallcnn_and_data):
    model, data = smallcnn_and_data
    value = latent_saturation(model, data, count=8)
    assert 0.0 < value < 0.5
    # by hand: the mean distance of every latent value from 0.5
    images = torch.stack([data[i][0] for i in range(8)])
    with torch.no_grad():
        z = model.net.add_on_layers(model.net.features(model.normalize(images)))
    assert value == pytest.approx(float((z - 0.5).abs().mean()), rel=1e-5)
