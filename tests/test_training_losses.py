import torch

from protobench.training.losses import (
    LossCoefficients,
    cluster_cost,
    l1_wrong_class,
    protopnet_loss,
    separation_cost,
)

# 2 classes x 2 prototypes; prototype j belongs to class j // 2
IDENTITY = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
MIN_D = torch.tensor([[0.5, 2.0, 1.0, 3.0],    # image of class 0
                      [4.0, 0.2, 0.7, 0.1]])   # image of class 1
LABELS = torch.tensor([0, 1])


def test_cluster_and_separation_by_hand():
    own = IDENTITY[:, LABELS].t()
    # cluster: closest own-class prototype: image 0 -> 0.5, image 1 -> 0.1
    assert torch.isclose(cluster_cost(MIN_D, own, 128.0), torch.tensor((0.5 + 0.1) / 2))
    # separation: closest other-class prototype: image 0 -> 1.0, image 1 -> 0.2
    assert torch.isclose(separation_cost(MIN_D, own, 128.0), torch.tensor((1.0 + 0.2) / 2))


def test_l1_counts_only_wrong_class_weights():
    w = torch.tensor([[1.0, 1.0, -0.5, -0.25], [-0.5, 2.0, 1.0, 1.0]])
    assert torch.isclose(l1_wrong_class(w, IDENTITY), torch.tensor(0.5 + 0.25 + 0.5 + 2.0))


def test_total_loss_combines_terms_with_original_coefficients():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    w = torch.ones(2, 4)
    loss, terms = protopnet_loss(logits, MIN_D, LABELS, IDENTITY, w, (4, 128, 1, 1))
    ce = torch.nn.functional.cross_entropy(logits, LABELS)
    expected = ce + 0.8 * 0.3 - 0.08 * 0.6 + 1e-4 * 4.0
    assert torch.isclose(loss, expected)
    assert terms["clst"] == torch.tensor(0.3).item() or abs(terms["clst"] - 0.3) < 1e-6
    assert LossCoefficients() == LossCoefficients(1.0, 0.8, -0.08, 1e-4)
