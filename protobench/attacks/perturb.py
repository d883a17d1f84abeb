"""Attack the pairs as a preset says, in batches, and draw the noise control beside it.

``run_attack`` hands the pairs to the preset's kind (protobench.attacks.kinds:
masked PGD/APGD, ensembles, whole-image attacks, JPEG, noise);
``noise_control`` draws the uniform noise of the same mask and eps;
``attack_in_batches`` does either a batch of pairs at a time.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from protobench.attacks.engine import Rows
from protobench.attacks.inputs import check_images
from protobench.attacks.kinds import get_kind
from protobench.attacks.kinds.base import AttackResult
from protobench.attacks.kinds.noise import uniform_noise_control
from protobench.attacks.pairs import Pairs
from protobench.attacks.presets import AttackPreset


def run_attack(model: nn.Module, images: torch.Tensor, pairs: Pairs, preset: AttackPreset,
               generator: torch.Generator | None = None, rows: Rows | None = None) -> list[AttackResult]:
    """Attack every pair as the preset's kind says (protobench.attacks.kinds): one result
    per setting (one for most kinds; one per quality, in the preset's order, for jpeg).

    images (B, 3, H, W) in [0, 1] (the batch ``pairs`` was selected from); seeded by
    ``generator`` (default: seed 0). Each result holds x_adv (N, 3, H, W), one per pair.
    ``rows`` (masked-pgd): the pairs are those rows of a larger batch, whose random
    starts they draw (an ensemble member on the pairs not yet successful).
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    images = check_images(images, model).detach()
    return get_kind(preset.kind).run(model, images, pairs, preset, generator, rows)


def noise_control(model: nn.Module, images: torch.Tensor, pairs: Pairs, preset: AttackPreset,
                  generator: torch.Generator | None = None) -> AttackResult:
    """Uniform noise of the preset's norm and eps inside each pair's mask (the control).

    ``model`` is unused but for checking the images (kept so the control is called like
    ``run_attack``).
    """
    return uniform_noise_control(check_images(images, model).detach(), pairs, preset, generator)


def pair_batches(pairs: Pairs, batch_size: int):
    """Consecutive runs of at most ``batch_size`` pairs that never split an image's
    pairs (whole-image attacks and JPEG treat each image once per batch); an
    image with more pairs than ``batch_size`` is a batch of its own."""
    counts = torch.unique_consecutive(pairs.image_index, return_counts=True)[1].tolist()
    first = size = 0
    for count in counts:
        if size and size + count > batch_size:
            yield pairs[first:first + size]
            first, size = first + size, 0
        size += count
    if size:
        yield pairs[first:first + size]


def attack_in_batches(model: nn.Module, images: torch.Tensor, pairs: Pairs, preset: AttackPreset,
                      generator: torch.Generator, batch_size: int = 64,
                      control: bool = False) -> torch.Tensor:
    """x_adv (N, 3, H, W) of every pair, ``batch_size`` pairs at a time (``pair_batches``):
    the preset's attack (its first setting), or with ``control`` its noise control."""
    chunks = []
    for batch in pair_batches(pairs, batch_size):
        if control:
            chunks.append(noise_control(model, images, batch, preset, generator).x_adv)
        else:
            chunks.append(run_attack(model, images, batch, preset, generator)[0].x_adv)
    return torch.cat(chunks)
