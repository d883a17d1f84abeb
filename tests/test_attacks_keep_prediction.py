"""keep_prediction: the explanation moves while the answer stays (attacks/pgd-local-kept.toml)."""

import pytest
import torch

import protobench
from protobench.attacks.objectives import PeakMargin, PrototypeObjective, class_margin
from protobench.attacks.presets import AttackPreset, load_attack
from protobench.errors import ProtobenchError


def test_class_margin_is_positive_exactly_when_the_prediction_holds():
    logits = torch.tensor([[3.0, 1.0, 2.5], [0.0, 2.0, 2.0], [1.0, 4.0, 0.0]])
    margin = class_margin(logits, torch.tensor([0, 1, 0]))
    assert margin.tolist() == pytest.approx([0.5, 0.0, -3.0])


def test_the_objective_is_the_smaller_of_the_two_margins():
    model = protobench.load("synth-smallcnn").eval()
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    prototype = torch.tensor([0, 5, 17])
    target = torch.zeros(3, 8, 8, dtype=torch.bool)
    target[:, :2, :2] = True
    plain = PrototypeObjective("target-margin", prototype, target.clone(), target)
    with torch.no_grad():
        prediction = model(x).argmax(1)
        kept = PrototypeObjective("target-margin", prototype, target.clone(), target, 0.0, prediction)
        expected = torch.minimum(plain(model, x), class_margin(model(x), prediction))
        torch.testing.assert_close(kept(model, x), expected)
        # the success margin reads the similarity maps the same way
        success = PeakMargin(prototype, target, prediction)(model, x)
        torch.testing.assert_close(success, expected)
        assert kept.select(torch.tensor([2])).prediction.tolist() == [prediction[2].item()]


def test_pgd_local_kept_succeeds_only_with_the_prediction_held():
    model = protobench.load("synth-smallcnn")
    from protobench.training import model_split

    _, data = model_split(model, "test")
    idx = range(100, 112)  # images no committed result uses
    images = torch.stack([data[i][0] for i in idx])
    labels = torch.tensor([data[i][1] for i in idx])
    relevance = [data.relevance_mask(i) for i in idx]
    kept = protobench.attack(model, images, labels, "pgd-local-kept", relevance, steps=10)
    rates = kept.rates()
    joint = kept.metrics.peak_in_target.bool() & kept.metrics.pred_kept.bool()
    assert torch.equal(kept.metrics.in_target_kept.bool(), joint)
    assert rates["in_target_kept"] == pytest.approx(float(joint.float().mean()))
    assert rates["in_target_kept"] > 0  # the attack works on this model


def test_keep_prediction_needs_a_masked_map_attack():
    with pytest.raises(ProtobenchError, match="keep_prediction"):
        AttackPreset(name="bad", kind="whole-image", mask="full", objective="cross-entropy",
                     method="pgd", keep_prediction=True)
    assert load_attack("pgd-local-kept").keep_prediction is True
    assert load_attack("pgd-local").keep_prediction is False
