import pytest
import torch

from protobench.attacks.kinds.noise import uniform_noise
from protobench.errors import ProtobenchError


def setup():
    x = torch.rand(5, 3, 16, 16)
    mask = torch.zeros(5, 1, 16, 16, dtype=torch.bool)
    mask[:, :, 4:12, 2:9] = True
    return x, mask


def test_linf_noise_is_uniform_inside_the_mask_only():
    x, mask = setup()
    x = x * 0.5 + 0.25                        # far from the bounds: no clipping
    out = uniform_noise(x, mask, 0.1, generator=torch.Generator().manual_seed(0))
    delta = out - x
    outside = ~mask.expand_as(x)
    assert torch.equal(out[outside], x[outside])
    inside = delta[~outside]
    assert inside.abs().max() <= 0.1 + 1e-6 and inside.abs().max() > 0.09
    assert abs(inside.mean()) < 0.01          # centred
    assert inside.std() == pytest.approx(0.2 / 12 ** 0.5, rel=0.1)


def test_l2_noise_has_norm_eps_and_clips():
    x, mask = setup()
    out = uniform_noise(x * 0.5 + 0.25, mask, 0.5, norm="L2")
    norms = (out - (x * 0.5 + 0.25)).flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.full((5,), 0.5))
    clipped = uniform_noise(torch.ones_like(x), mask, 0.5)
    assert clipped.max() <= 1


def test_noise_is_seeded():
    x, mask = setup()
    a = uniform_noise(x, mask, 0.1, generator=torch.Generator().manual_seed(1))
    b = uniform_noise(x, mask, 0.1, generator=torch.Generator().manual_seed(1))
    c = uniform_noise(x, mask, 0.1, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_eps_is_refused():
    x, mask = setup()
    with pytest.raises(ProtobenchError, match="eps=2"):
        uniform_noise(x, mask, 2)
