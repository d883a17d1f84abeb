import pytest
import torch

from protobench.attacks.kinds.whole_image import whole_image_attack, whole_image_engine
from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ProtoPNet.build(Architecture(img_size=32, num_classes=3, prototypes_per_class=2,
                                        prototype_depth=16)).eval()


@pytest.mark.parametrize("method,norm", [("pgd", "Linf"), ("pgd", "L2"), ("fgsm", "Linf"),
                                         ("apgd", "Linf")])
def test_whole_image_attacks_stay_in_budget_and_are_seeded(model, method, norm):
    x, labels = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    eps = 8 / 255 if norm == "Linf" else 0.5
    state = torch.random.get_rng_state()
    a = whole_image_attack(model, x, labels, method, norm, eps, eps / 4, steps=3,
                           generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.random.get_rng_state(), state)      # global RNG untouched
    b = whole_image_attack(model, x, labels, method, norm, eps, eps / 4, steps=3,
                           generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    delta = (a - x).flatten(1)
    bound = delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)
    assert (bound <= eps + 1e-5).all() and 0 <= a.min() and a.max() <= 1


def test_pgd_lowers_the_true_class_logit_margin(model):
    x, labels = torch.rand(4, 3, 32, 32), model(torch.rand(4, 3, 32, 32)).argmax(1)
    labels = model(x).argmax(1)
    adv = whole_image_attack(model, x, labels, "pgd", eps=8 / 255, steps=5)
    ce = torch.nn.functional.cross_entropy
    assert ce(model(adv), labels, reduction="none").sum() > ce(model(x), labels, reduction="none").sum()


def test_bad_methods_are_refused(model):
    with pytest.raises(ProtobenchError, match="unknown whole-image method 'cw'"):
        whole_image_engine(model, "cw")
    with pytest.raises(ProtobenchError, match="fgsm supports norm 'Linf' only"):
        whole_image_engine(model, "fgsm", norm="L2")


def test_fgsm_is_one_signed_step_of_eps_from_the_clean_image(model):
    """Goodfellow et al. 2015: x + eps * sign(grad CE), clipped to [0, 1]."""
    x, labels = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    adv = whole_image_attack(model, x, labels, "fgsm", eps=8 / 255)
    x_ = x.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(model(x_), labels, reduction="sum").backward()
    expected = (x + 8 / 255 * x_.grad.sign()).clamp(0, 1)
    torch.testing.assert_close(adv, expected, rtol=0, atol=1e-6)


def test_the_whole_image_attacks_need_no_torchattacks():
    import subprocess
    import sys
    code = ("import sys, torch; sys.modules['torchattacks'] = None\n"
            "from protobench.attacks.kinds.whole_image import whole_image_attack\n"
            "from protobench.model import Architecture, ProtoPNet\n"
            "m = ProtoPNet.build(Architecture(img_size=32, num_classes=3, prototypes_per_class=2, "
            "prototype_depth=16)).eval()\n"
            "whole_image_attack(m, torch.rand(2, 3, 32, 32), torch.tensor([0, 1]), 'apgd', steps=2)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
