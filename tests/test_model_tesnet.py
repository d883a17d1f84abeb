"""TesNet: projections onto unit basis vectors, its loss terms, its training and push."""

import math

import pytest
import torch
import torch.nn.functional as F

from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet
from protobench.evaluation.realism import model_realism
from protobench.training.losses import (
    LossCoefficients, basis_orthogonality, subspace_separation, tesnet_loss, training_loss,
)


def _tesnet(**kw):
    torch.manual_seed(0)
    arch = dict(family="tesnet", img_size=32, num_classes=3, prototypes_per_class=2,
                prototype_depth=8, add_on_layers_type="regular")
    arch.update(kw)
    return ProtoPNet.build(Architecture(**arch), classes=["a", "b", "c"], name="tes").eval()


def test_similarity_is_the_projection_onto_unit_basis_vectors_and_logits_read_its_max():
    model = _tesnet()
    assert model.family == "tesnet" and model.rules.has_distances is False
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z = model.net.conv_features(model.normalize(x))
        p = model.net.prototype_vectors
        expected = torch.einsum("bdhw,pd->bphw", z, p.flatten(1) / p.flatten(1).norm(dim=1, keepdim=True))
        maps = model.similarity_maps(x)
        logits, min_distances, explained = model.explain(x)
        train_logits, min_cosine = model.net(model.normalize(x))
    torch.testing.assert_close(maps, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(explained, maps)
    torch.testing.assert_close(min_distances, -maps.flatten(2).amax(2))
    pooled = maps.flatten(2).amax(2)
    torch.testing.assert_close(logits, pooled @ model.net.last_layer.weight.t())
    torch.testing.assert_close(train_logits, logits)
    cosine = torch.einsum("bdhw,pd->bphw", F.normalize(z, dim=1), F.normalize(p.flatten(1), dim=1))
    torch.testing.assert_close(min_cosine, -cosine.flatten(2).amax(2), rtol=1e-5, atol=1e-6)
    assert torch.equal(model.attack_maps(x), model.similarity_maps(x))


def test_orthogonality_is_zero_for_orthonormal_bases_and_counts_the_overlap():
    eye = torch.eye(4)[:2].expand(3, 2, 4)  # three classes, each the same two axes
    assert basis_orthogonality(eye) == 0
    bent = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # two equal unit vectors: off-diagonal 1 twice
    assert basis_orthogonality(bent) == 2


def test_subspace_separation_is_the_distance_of_the_projection_operators():
    same = torch.eye(4)[:2].expand(2, 2, 4)
    assert subspace_separation(same) == 0
    apart = torch.stack([torch.eye(4)[:2], torch.eye(4)[2:]])  # orthogonal planes
    # ||P1 - P2||_F = sqrt(4) for two orthogonal planes of R^4, over sqrt(2)
    assert math.isclose(subspace_separation(apart).item(), 2 / math.sqrt(2), rel_tol=1e-6)
    bases = torch.randn(3, 2, 4, requires_grad=True)
    subspace_separation(bases).backward()
    assert torch.isfinite(bases.grad).all()


def test_the_loss_follows_its_terms_and_the_trainer_dispatches_to_it():
    model = _tesnet()
    ppnet = model.net
    logits = torch.zeros(2, 3)
    labels = torch.tensor([0, 2])
    min_cosine = torch.tensor([[-0.9, -0.5, 0, 0, -0.2, -0.1], [0, 0, -0.3, -0.4, -0.8, 0]])
    coefs = LossCoefficients(orthogonal=0.0, subspace_separation=0.0, l1=0.0)
    loss, terms = tesnet_loss(logits, min_cosine, labels, ppnet.prototype_class_identity,
                              ppnet.last_layer.weight, ppnet.prototype_shape, ppnet.class_bases(),
                              coefs)
    assert math.isclose(terms["clst"], (-0.9 - 0.8) / 2, rel_tol=1e-6)
    assert math.isclose(terms["sep"], (-0.2 - 0.4) / 2, rel_tol=1e-6)
    assert math.isclose(loss.item(), math.log(3) + 0.8 * terms["clst"] - 0.08 * terms["sep"],
                        rel_tol=1e-6)
    again, _ = training_loss(model, logits, min_cosine, labels, coefs)
    assert again == loss


def test_bad_tesnet_architectures_are_refused():
    with pytest.raises(ProtobenchError, match="1x1"):
        Architecture(family="tesnet", prototype_size=3)
    with pytest.raises(ProtobenchError, match="a tesnet model"):
        Architecture(family="tesnet", num_prototypes=30)


PLAIN = {"part_jitter": 0, "colour_jitter": 15, "texture_jitter": 0, "lighting": 0, "blur": 0,
         "occluders": 0, "clutter": 0}


@pytest.fixture(scope="module")
def trained_tesnet(train_recipe):
    return train_recipe("tiny-tes", {
        "model": {"family": "tesnet", "backbone": "smallcnn", "img_size": 32,
                  "prototypes_per_class": 2, "prototype_depth": 16, "add_on_layers_type": "regular"},
        "data": {"dataset": "synth", "num_classes": 4, "train_per_class": 40, "test_per_class": 20,
                 "object_scale": [0.6, 0.8], "distractors": 1, "seed": 3, **PLAIN},
        "train": {"seed": 0, "batch_size": 32, "pretrain_epochs": 2, "epochs": 5, "warm_epochs": 1,
                  "push_epochs": [4], "last_layer_epochs": 2, "lr": {"features": 1e-3},
                  "loss": {"orthogonal": 1e-4}}})


def test_tesnet_trains_through_every_stage_and_pushes_onto_its_classes_patches(trained_tesnet):
    result, data = trained_tesnet
    stages = [h.stage for h in result.history]
    assert stages == ["pretrain"] * 2 + ["warm"] + ["joint"] * 4 + ["last"] * 2
    assert result.test_accuracy >= 0.5  # chance 0.25 (4 classes)
    model = result.model
    labels = torch.tensor([int(data.push[i][1]) for i in range(len(data.push))])
    classes = model.prototype_class
    assert len(result.push_records) == model.num_prototypes
    for record in result.push_records:  # class-specific push: a source of the prototype's class
        assert labels[record.image] == classes[record.prototype]
    # the pushed prototype points along its source patch: the projection there is its norm
    record = result.push_records[0]
    x = data.push[record.image][0][None]
    (y, x_cell) = record.cell
    with torch.no_grad():
        patch = model.net.conv_features(model.normalize(x))[0, :, y, x_cell]
        at_source = model.similarity_maps(x)[0, record.prototype, y, x_cell]
    # (to 1e-3: the last-layer epochs run in train mode, as the original's, and move the
    # backbone's BatchNorm statistics a little after push)
    torch.testing.assert_close(at_source, patch.norm(), rtol=1e-3, atol=1e-5)


def test_tesnet_prototypes_stay_unit_length_while_they_learn(trained_tesnet):
    result, _ = trained_tesnet
    # after push the prototypes are latent patches; one more step renormalises them
    ppnet = result.model.net
    ppnet.after_step()
    norms = ppnet.prototype_vectors.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_tesnet_realism_has_no_distance_ratio(trained_tesnet):
    result, data = trained_tesnet
    report = model_realism(result.model, data.test)
    assert report.distance_ratio.n == 0
