"""BPDA through sigmoids changes the attack's gradient and nothing it measures."""

import pytest
import torch
import torch.nn as nn

import protobench
from protobench.attacks import load_attack, run_attack, select_pairs
from protobench.attacks.bpda import SLOPE, gradient_surrogate
from protobench.attacks.engine import MaskedPGD
from protobench.attacks.kinds.masked_pgd import success_margin
from protobench.errors import ProtobenchError
from protobench.paths import MODELS_DIR


def _saturated() -> nn.Module:
    """Pixels -> a sigmoid driven to exactly 1.0 in float32 (pre-activation about 100)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.Sigmoid())
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.0)
        model[1].bias.fill_(100.0)
    return model


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_bpda_keeps_the_forward_values_and_gives_the_tangents_gradient():
    model, x = _saturated(), torch.rand(2, 3, 2, 2)
    exact = model(x)
    with gradient_surrogate(model, "bpda"):
        x_bpda = x.clone().requires_grad_(True)
        out = model(x_bpda)
        assert torch.equal(out, exact)  # bit for bit
        out.sum().backward()
    # the tangent at 0: d/dx sum(SLOPE * (W x + b)) = SLOPE * sum of W's rows
    expected = (SLOPE * model[1].weight.sum(dim=0)).view(3, 2, 2).expand(2, 3, 2, 2)
    assert torch.allclose(x_bpda.grad, expected)
    x_exact = x.clone().requires_grad_(True)
    model(x_exact).sum().backward()
    assert torch.equal(x_exact.grad, torch.zeros_like(x))  # saturated: no gradient at all
    assert _hooks(model) == 0  # removed when the block ends


def test_the_hooks_are_removed_on_an_error_and_exact_adds_none():
    model = _saturated()
    with pytest.raises(RuntimeError, match="inside"):
        with gradient_surrogate(model, "bpda"):
            assert _hooks(model) == 1
            raise RuntimeError("inside")
    assert _hooks(model) == 0
    with gradient_surrogate(model, "exact"):
        assert _hooks(model) == 0
    with pytest.raises(ValueError, match="backward"):
        with gradient_surrogate(model, "soft"):
            pass


def test_a_saturated_model_stops_the_exact_attack_and_not_the_bpda_one():
    model, x = _saturated(), torch.rand(2, 3, 2, 2)
    mask = torch.ones(2, 1, 2, 2, dtype=torch.bool)

    def objective(m, images):
        return -m(images).sum(dim=1)

    attack = MaskedPGD(model, eps=8 / 255, alpha=2 / 255, steps=4, random_start=False)
    with pytest.raises(ProtobenchError, match="identically zero"):
        attack(x, mask, objective)
    with gradient_surrogate(model, "bpda"):
        x_adv, _ = attack(x, mask, objective)
    # every pixel steps against its weight, all positive: 4 steps of 2/255 down to -eps (or 0)
    assert torch.allclose(x_adv, (x - 8 / 255).clamp(0, 1), atol=1e-6)


def test_backward_is_checked_in_presets():
    assert load_attack("pgd-local").backward == "exact"
    assert load_attack("pgd-local", backward="bpda").backward == "bpda"
    with pytest.raises(ProtobenchError, match="unknown backward 'soft'.*exact, bpda"):
        load_attack("pgd-local", backward="soft")
    with pytest.raises(ProtobenchError, match="backward='bpda' is invalid.*masked attacks"):
        load_attack("pgd-global", backward="bpda")
    with pytest.raises(ProtobenchError, match="backward='bpda' is invalid.*compile"):
        load_attack("pgd-local", backward="bpda", compile=True)
    members = load_attack("auto-local", members=[{"name": "m", "backward": "bpda"}]).member_presets()
    assert members[0].backward == "bpda"


@pytest.mark.skipif(not (MODELS_DIR / "synth-smallcnn.pt").exists(),
                    reason="needs the committed model models/synth-smallcnn.pt")
def test_a_bpda_attack_keeps_images_by_the_real_models_margin(unseen_test_images):
    model = protobench.load("synth-smallcnn")
    x, y, relevance = unseen_test_images(model, 6)
    preset = load_attack("pgd-local", steps=5, backward="bpda")
    pairs = select_pairs(model, x, y, relevance, preset)
    result = run_attack(model, x, pairs, preset, torch.Generator().manual_seed(0))[0]
    assert _hooks(model) == 0
    with torch.no_grad():
        real = success_margin(preset, pairs)(model, result.x_adv)
    assert torch.equal(result.objective, real)
    exact = run_attack(model, x, pairs, load_attack("pgd-local", steps=5),
                       torch.Generator().manual_seed(0))[0]
    assert not torch.equal(exact.x_adv, result.x_adv)  # the search did change
