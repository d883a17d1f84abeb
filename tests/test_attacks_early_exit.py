"""Early exit: restarts and ensemble members run only on the pairs not yet successful, and
the pairs that succeed are exactly those of the full (exhaustive) search."""

import pytest
import torch

import protobench
from protobench.attacks import load_attack, run_attack, select_pairs
from protobench.attacks.engine import MaskedPGD
from protobench.attacks.kinds.masked_pgd import success_margin
from protobench.errors import ProtobenchError
from protobench.paths import MODELS_DIR

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "synth-smallcnn.pt").exists(),
                                reason="needs the committed model models/synth-smallcnn.pt")


@pytest.fixture(scope="module")
def setup(unseen_test_images):
    model = protobench.load("synth-smallcnn")
    return (model, *unseen_test_images(model, 12))


def counting(model):
    """A counter of the images that go through the model's first convolution."""
    seen = [0]
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    handle = first.register_forward_pre_hook(lambda _m, inputs: seen.__setitem__(0, seen[0] + len(inputs[0])))
    return seen, handle


def _run(setup, name, **options):
    model, x, y, relevance = setup
    preset = load_attack(name, **options)
    pairs = select_pairs(model, x, y, relevance, preset)
    generator = torch.Generator().manual_seed(0)
    result = run_attack(model, x, pairs, preset, generator)[0]
    with torch.no_grad():
        margin = success_margin(preset, pairs)(model, result.x_adv)
    return result, margin, torch.rand(1, generator=generator)  # the next draw after the attack


def test_a_start_drawn_for_some_rows_is_the_full_batchs_start():
    attack = MaskedPGD(torch.nn.Identity(), eps=8 / 255)
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(images, dtype=torch.bool)
    full = attack.start(images, mask, torch.Generator().manual_seed(0))
    rows = torch.tensor([1, 4])
    some = attack.start(images[rows], mask[rows], torch.Generator().manual_seed(0), (rows, 6))
    assert torch.equal(some, full[rows])
    l2 = MaskedPGD(torch.nn.Identity(), norm="L2", eps=0.5)
    full = l2.start(images, mask, torch.Generator().manual_seed(0))
    some = l2.start(images[rows], mask[rows], torch.Generator().manual_seed(0), (rows, 6))
    assert torch.equal(some, full[rows])


@pytest.mark.slow
def test_the_ensemble_with_early_exit_finds_the_same_pairs_for_less_work(setup):
    """auto-local on 12 pairs at 8/255, 10 steps: the same pairs in the target as when every
    member attacks every pair; a pair leaves at its first success; the unsuccessful pairs
    keep the very images of the full search; the generator ends where it would."""
    fast, fast_margin, fast_next = _run(setup, "auto-local", steps=10)
    full, full_margin, full_next = _run(setup, "auto-local", steps=10, exhaustive="true")
    success = full_margin > 0
    assert 0 < int(success.sum()) < len(success)      # some pairs succeed, some do not
    assert torch.equal(fast_margin > 0, success)
    assert torch.equal(fast_next, full_next)
    assert torch.equal(fast.x_adv[~success], full.x_adv[~success])
    assert all(m.attacked is None for m in full.members)
    done = torch.zeros_like(success)
    for member in fast.members:                       # each member met only the pairs not yet done
        attacked = torch.ones_like(success) if member.attacked is None else member.attacked
        assert torch.equal(attacked, ~done)
        done |= member.objective > 0
    assert sum(int(m.attacked.sum()) if m.attacked is not None else len(success)
               for m in fast.members) < len(fast.members) * len(success)


@pytest.mark.slow
def test_restarts_with_early_exit_find_the_same_pairs_for_less_work(setup):
    """pgd-local with 3 restarts at 4/255, 5 steps: the same pairs in the target as the full
    search, with fewer images through the model."""
    model, x, y, relevance = setup
    counts, results = {}, {}
    for exhaustive in (False, True):
        preset = load_attack("pgd-local", eps="4/255", steps=5, restarts=3, exhaustive=exhaustive)
        pairs = select_pairs(model, x, y, relevance, preset)
        seen, handle = counting(model)
        x_adv = run_attack(model, x, pairs, preset, torch.Generator().manual_seed(0))[0].x_adv
        handle.remove()
        with torch.no_grad():
            results[exhaustive] = success_margin(preset, pairs)(model, x_adv) > 0
        counts[exhaustive] = seen[0]
    assert 0 < int(results[True].sum()) < len(results[True])
    assert torch.equal(results[False], results[True])
    assert counts[False] < counts[True]


def test_exhaustive_is_a_preset_option():
    assert not load_attack("auto-local").exhaustive
    assert load_attack("auto-local", exhaustive="true").exhaustive
    assert all(m.exhaustive for m in load_attack("auto-local", exhaustive=True).member_presets())
    with pytest.raises(ProtobenchError, match="exhaustive"):
        load_attack("auto-local", exhaustive="sometimes")
