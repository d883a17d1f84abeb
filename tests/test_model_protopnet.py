import pytest
import torch

from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet, create_backbone
from protobench.model.families.protopnet.network import l2_distances, make_add_on_layers


def test_l2_distances_equal_cdist():
    z = torch.randn(3, 16, 5, 6)
    p = torch.randn(7, 16, 1, 1)
    d = l2_distances(z, p, torch.ones_like(p))
    flat = z.permute(0, 2, 3, 1).reshape(3, 30, 16)
    ref = torch.cdist(flat, p.view(1, 7, 16).expand(3, 7, 16)) ** 2  # (B, 30, P)
    torch.testing.assert_close(d, ref.permute(0, 2, 1).reshape(3, 7, 5, 6), atol=1e-4, rtol=1e-4)
    assert (d >= 0).all()


def test_l2_distances_of_larger_prototypes_equal_brute_force():
    z = torch.randn(2, 4, 5, 5)
    p = torch.randn(3, 4, 2, 2)
    d = l2_distances(z, p, torch.ones_like(p))
    assert d.shape == (2, 3, 4, 4)
    ref = torch.stack([torch.stack([((z[:, :, i:i + 2, j:j + 2] - p[k]) ** 2).sum(dim=(1, 2, 3))
                                    for i in range(4) for j in range(4)], dim=1)
                       for k in range(3)], dim=1).view(2, 3, 4, 4)
    torch.testing.assert_close(d, ref, atol=1e-4, rtol=1e-4)


def test_distance_is_zero_when_prototype_is_a_patch():
    z = torch.rand(1, 8, 4, 4)
    p = z[:, :, 2, 1].reshape(1, 8, 1, 1).clone()
    d = l2_distances(z, p, torch.ones_like(p))
    assert d[0, 0, 2, 1] == 0


def test_forward_min_pooling_and_log_similarity():
    model = ProtoPNet.build(Architecture()).eval()
    ppnet = model.net
    x = torch.randn(2, 3, 64, 64)
    logits, min_d = ppnet(x)
    d = ppnet.prototype_distances(x)
    torch.testing.assert_close(min_d, d.flatten(2).min(dim=2).values)
    sim = torch.log((min_d + 1) / (min_d + 1e-4))
    torch.testing.assert_close(logits, sim @ ppnet.last_layer.weight.t())


def test_linear_similarity_is_negative_distance():
    model = ProtoPNet.build(Architecture(prototype_activation_function="linear")).eval()
    x = torch.rand(1, 3, 64, 64)
    d = model.net.prototype_distances(model.normalize(x))
    torch.testing.assert_close(model.similarity_maps(x), -d)


def test_last_layer_initialisation_and_class_identity():
    ppnet = ProtoPNet.build(Architecture(num_classes=3, prototypes_per_class=2)).net
    assert ppnet.last_layer.bias is None
    assert ppnet.prototype_class.tolist() == [0, 0, 1, 1, 2, 2]
    expected = torch.full((3, 6), -0.5)
    for j in range(6):
        expected[j // 2, j] = 1.0
    torch.testing.assert_close(ppnet.last_layer.weight.data, expected)


def test_add_on_layers():
    regular = make_add_on_layers(512, 128, "regular")
    assert [type(m).__name__ for m in regular] == ["Conv2d", "ReLU", "Conv2d", "Sigmoid"]
    bottleneck = make_add_on_layers(512, 128, "bottleneck")
    assert [m.out_channels for m in bottleneck if isinstance(m, torch.nn.Conv2d)] == [256, 256, 128, 128]
    assert isinstance(bottleneck[-1], torch.nn.Sigmoid)
    with pytest.raises(ProtobenchError, match="add-on"):
        make_add_on_layers(512, 128, "wide")


def test_explain_is_one_consistent_pass():
    model = ProtoPNet.build(Architecture()).eval()
    x = torch.rand(2, 3, 64, 64)
    logits, min_d, maps = model.explain(x)
    torch.testing.assert_close(logits, model(x))
    torch.testing.assert_close(maps, model.similarity_maps(x))
    assert maps.shape == (2, 100, 8, 8)


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ProtobenchError, match=r"unknown backbone 'resnet19'.*resnet18"):
        create_backbone("resnet19")


def test_pretrained_weights_are_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ProtobenchError, match="never downloads"):
        create_backbone("resnet18", pretrained=True)
