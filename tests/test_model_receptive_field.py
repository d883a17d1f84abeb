import numpy as np
import pytest
import torch

from protobench.model.backbones import create_backbone
from protobench.model.receptive_field import (
    box_mask,
    high_activation_box,
    proto_layer_rf_info,
    rf_box,
    upsample_maps,
)


@pytest.mark.parametrize("name, expected", [
    ("vgg19", [7, 32, 268, 16]),
    ("resnet18", [7, 32, 435, 0.5]),
    ("resnet34", [7, 32, 899, 0.5]),
    ("resnet50", [7, 32, 427, 0.5]),
])
def test_receptive_field_of_spec(name, expected):
    assert proto_layer_rf_info(224, create_backbone(name).conv_info()) == expected


def test_smallcnn_has_8x8_cells_at_64px():
    n, jump, rf, start = proto_layer_rf_info(64, create_backbone("smallcnn").conv_info())
    assert (n, jump) == (8, 8)
    assert create_backbone("smallcnn")(torch.rand(1, 3, 64, 64)).shape[-2:] == (8, 8)


def test_rf_box_clipped_to_image():
    info = [7, 32, 268, 16]
    assert rf_box(0, 0, 224, info) == (0, 150, 0, 150)
    assert rf_box(3, 3, 224, info) == (0, 224, 0, 224)


def _reference_high_activation_crop(act_map, percentile=95):
    """The original find_high_activation_crop, on a numpy map already upsampled."""
    threshold = np.percentile(act_map, percentile)
    mask = np.ones(act_map.shape)
    mask[act_map < threshold] = 0
    rows = np.where(mask.sum(axis=1) > 0.5)[0]
    cols = np.where(mask.sum(axis=0) > 0.5)[0]
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def test_upsampling_matches_opencv_bicubic():
    cv2 = pytest.importorskip("cv2")
    maps = torch.rand(4, 7, 7)
    ours = upsample_maps(maps, 224).numpy()
    theirs = np.stack([cv2.resize(m.numpy(), (224, 224), interpolation=cv2.INTER_CUBIC) for m in maps])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_high_activation_box_matches_original_on_random_maps():
    maps = torch.rand(6, 7, 7) ** 4
    ours = high_activation_box(maps, 224).tolist()
    up = upsample_maps(maps, 224).double().numpy()
    assert ours == [list(_reference_high_activation_crop(m)) for m in up]


def test_high_activation_box_single_hot_cell():
    maps = torch.zeros(1, 8, 8)
    maps[0, 2, 5] = 1.0
    y0, y1, x0, x1 = high_activation_box(maps, 64)[0].tolist()
    # the hot cell covers pixels 16..24 x 40..48; the box is around it
    assert y0 <= 18 and y1 >= 22 and x0 <= 42 and x1 >= 46
    assert y1 - y0 <= 16 and x1 - x0 <= 16


def test_high_activation_box_flat_map_is_whole_image():
    # every pixel ties at the percentile, so every pixel is kept
    assert high_activation_box(torch.full((1, 8, 8), 0.3), 64)[0].tolist() == [0, 64, 0, 64]


def test_high_activation_box_ties_keep_all_tied_pixels():
    maps = torch.zeros(1, 8, 8)
    maps[0, 1, 1] = maps[0, 6, 6] = 1.0  # two equal peaks: the box spans both
    y0, y1, x0, x1 = high_activation_box(maps, 64)[0].tolist()
    assert y0 < 16 and y1 > 48 and x0 < 16 and x1 > 48


def test_box_mask_with_margin():
    m = box_mask(torch.tensor([[2, 4, 3, 6]]), 8, margin=1)[0]
    assert m.sum() == 4 * 5 and m[1, 2] and m[4, 6] and not m[5, 2]


# ------------------------------------------- receptive fields from the real layers
def _probe(layers: torch.nn.Module) -> torch.nn.Sequential:
    """A copy of a stack with the same geometry whose input gradient marks every pixel in a
    cell's receptive field: all-ones kernels, average instead of max pools, no nonlinearity."""
    import copy
    out = []
    for m in layers.children():
        if isinstance(m, torch.nn.Sequential):
            out.append(_probe(m))
        elif isinstance(m, torch.nn.Conv2d):
            conv = copy.deepcopy(m)
            with torch.no_grad():
                conv.weight.fill_(1.0)
                if conv.bias is not None:
                    conv.bias.zero_()
            out.append(conv)
        elif isinstance(m, torch.nn.MaxPool2d):
            out.append(torch.nn.AvgPool2d(m.kernel_size, m.stride, m.padding))
        elif isinstance(m, torch.nn.AvgPool2d):
            out.append(m)
    return torch.nn.Sequential(*out)


def _brute_force_rf(layers, img_size, cell):
    """(n, rf side, centre) of cell (cell, cell), from the support of the input gradient."""
    x = torch.ones(1, 3, img_size, img_size, requires_grad=True)
    y = _probe(layers)(x)
    y[0, 0, cell, cell].backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    r0, r1 = int(rows.min()), int(rows.max())
    return y.shape[-1], r1 - r0 + 1, (r0 + r1 + 1) / 2


STACKS = {
    "three 5x5 convs and pools": lambda: torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 4, 5, padding=2), torch.nn.BatchNorm2d(4), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 4, 5, padding=2)),
    "strided convs": lambda: torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 5, stride=2, padding=2),
        torch.nn.Conv2d(4, 4, 3, stride=1, padding=0)),
    "overlapping pool, dilation, nesting, 'same'": lambda: torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 7, stride=2, padding=3), torch.nn.MaxPool2d(3, 2, 1),
        torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=2, dilation=2), torch.nn.ReLU()),
        torch.nn.Conv2d(4, 4, 3, padding="same"), torch.nn.AvgPool2d(2)),
}


@pytest.mark.parametrize("name", [*STACKS, "smallcnn"])
def test_receptive_fields_match_the_brute_force_gradient(name):
    from protobench.model.backbones import sequential_conv_info

    layers = create_backbone("smallcnn").features if name == "smallcnn" else STACKS[name]()
    img_size = 160
    n, jump, rf, start = proto_layer_rf_info(img_size, sequential_conv_info(layers))
    cell = n // 2  # an interior cell: its field is not clipped by the border
    brute_n, brute_rf, brute_centre = _brute_force_rf(layers, img_size, cell)
    assert (n, rf) == (brute_n, brute_rf)
    assert start + cell * jump == brute_centre


def test_three_5x5_convs_are_not_read_as_3x3():
    from protobench.model.backbones import sequential_conv_info

    info = sequential_conv_info(STACKS["three 5x5 convs and pools"]())
    assert proto_layer_rf_info(64, info)[2] == 32  # 5 + 4*2 + 4*4 (+ pools), not 3x3's value
    assert info.kernel_sizes == (5, 2, 5, 2, 5)


def test_a_layer_without_a_known_receptive_field_is_an_error():
    from protobench.errors import ProtobenchError
    from protobench.model.backbones import sequential_conv_info

    with pytest.raises(ProtobenchError, match="AdaptiveAvgPool2d"):
        sequential_conv_info(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(2)))
    with pytest.raises(ProtobenchError, match="non-square kernel"):
        sequential_conv_info(torch.nn.Sequential(torch.nn.Conv2d(3, 4, (3, 5))))
