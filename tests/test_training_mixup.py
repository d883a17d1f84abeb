"""mixup as ProtoPool trains with it: the mixed images, the mixed cross-entropy, and where it runs."""

import pytest
import torch
import torch.nn.functional as F

from protobench.errors import ProtobenchError
from protobench.training.mixup import MixedBatch, Mixup, mixed_loss


def test_a_batch_is_mixed_with_one_lam_and_repeats_with_the_seed():
    images = torch.rand(8, 3, 4, 4)
    labels = torch.arange(8)
    first = Mixup(0.5, seed=3)(images, labels)
    again = Mixup(0.5, seed=3)(images, labels)
    assert torch.equal(first.images, again.images) and first.lam == again.lam
    assert 0.0 <= first.lam <= 1.0
    other = first.other_labels  # the labels are the images' indices, so this is the permutation
    assert sorted(other.tolist()) == list(range(8))
    expected = first.lam * images + (1 - first.lam) * images[other]
    assert torch.allclose(first.images, expected)
    mixer = Mixup(0.5, seed=0)
    lams = [mixer(images, labels).lam for _ in range(400)]
    # Beta(0.5, 0.5) is U-shaped: mean 0.5, and 59% of its mass below 0.2 or above 0.8
    assert abs(sum(lams) / len(lams) - 0.5) < 0.05
    assert sum(lam < 0.2 or lam > 0.8 for lam in lams) / len(lams) > 0.5


def test_only_the_cross_entropy_sees_both_labels():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    other = torch.tensor([3, 2, 1, 0, 3, 2])
    prototype_terms = torch.tensor(0.7)  # cluster and separation, on the first labels
    ce_first = F.cross_entropy(logits, labels)
    loss = 1.0 * ce_first + prototype_terms
    batch = MixedBatch(torch.zeros(6, 3, 2, 2), other, lam=0.3)
    mixed, terms = mixed_loss(loss, {"ce": ce_first.item()}, logits, labels, batch, 1.0)
    ce = 0.3 * ce_first + 0.7 * F.cross_entropy(logits, other)
    assert torch.allclose(mixed, ce + prototype_terms)
    assert terms["ce"] == pytest.approx(ce.item())
    same, _ = mixed_loss(loss, {}, logits, labels, MixedBatch(batch.images, other, lam=1.0), 1.0)
    assert torch.allclose(same, loss)  # lam 1: nothing mixed


def test_mixup_changes_the_training_pass_and_pip_net_refuses_it(train_recipe):
    from protobench.model import Architecture, ProtoPNet
    from protobench.training.trainer import run_epoch
    from protobench.training.losses import LossCoefficients

    def one_pass(mixup):
        torch.manual_seed(0)
        model = ProtoPNet.build(Architecture(backbone="smallcnn", img_size=32, num_classes=2,
                                             prototypes_per_class=2), ["a", "b"], name="m")
        data = torch.utils.data.TensorDataset(torch.rand(16, 3, 32, 32), torch.arange(16) % 2)
        loader = torch.utils.data.DataLoader(data, batch_size=8)
        opt = torch.optim.SGD(model.net.parameters(), lr=0.0)  # the loss alone, weights fixed
        return run_epoch(model, loader, opt, LossCoefficients(), "joint", 0, progress=False,
                         mixup=mixup)

    plain, mixed = one_pass(None), one_pass(Mixup(0.5, seed=0))
    assert plain.ce != pytest.approx(mixed.ce) and plain.clst != pytest.approx(mixed.clst)
    with pytest.raises(ProtobenchError, match="mixup are not built for PIP-Net"):
        train_recipe("tiny-pip", {
            "model": {"family": "pipnet", "backbone": "smallcnn", "img_size": 32},
            "data": {"dataset": "synth", "num_classes": 2, "train_per_class": 4, "test_per_class": 2},
            "train": {"epochs": 1, "mixup": 0.5}})


@pytest.mark.parametrize("alpha", [float("inf"), float("nan"), -1.0, "0.5", True])
def test_a_bad_alpha_is_a_recipe_error(alpha):
    from protobench.training.recipe import Schedule

    with pytest.raises(ProtobenchError, match="mixup=.* is invalid; allowed: a finite number >= 0"):
        Schedule(mixup=alpha)
