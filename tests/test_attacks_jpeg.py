import pytest
import torch

from protobench.attacks.kinds.jpeg import jpeg_compress, jpeg_sweep
from protobench.errors import ProtobenchError


def smooth_images():
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    return torch.stack([torch.stack([y, x, (x + y) / 2]), torch.stack([x, 1 - y, x * y])])


def test_jpeg_keeps_shape_range_and_degrades_with_quality():
    images = smooth_images()
    out = jpeg_sweep(images, [100, 50, 5])
    errors = [(o - images).abs().mean().item() for o in out]
    for o in out:
        assert o.shape == images.shape and o.dtype == images.dtype
        assert 0 <= o.min() and o.max() <= 1
    assert errors[0] < 2 / 255 and errors[0] < errors[1] < errors[2]


def test_jpeg_keeps_colour_channels_in_order():
    red = torch.zeros(1, 3, 16, 16)
    red[:, 0] = 1.0
    out = jpeg_compress(red, 90)
    assert out[0, 0].mean() > 0.9 and out[0, 2].mean() < 0.1


@pytest.mark.parametrize("quality", [0, 101, 50.5, "high"])
def test_bad_quality_is_refused(quality):
    with pytest.raises(ProtobenchError, match="JPEG quality"):
        jpeg_compress(smooth_images(), quality)
