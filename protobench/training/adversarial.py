"""Adversarial training: the defences a recipe can turn on (``[train] adversarial``).

- ``"fgsm"``: fast adversarial training (Wong, Rice & Kolter 2020): a
  uniform random start in the eps ball, one signed-gradient step of size
  alpha on the cross-entropy, projected back; the network trains on the
  result. Hoffmann et al. 2021 used it against their attack 1 (eps 8/255,
  step 10/255).
- a masked attack preset (``"pgd-local"``, ``"pgd-head-on-stomach"``, ...):
  attack the explanation during training, the direction Hoffmann et al.
  suggest and no released code has: each training image is replaced by the
  preset's attack on its top-1 prototype (inside the preset's mask), and the
  network trains with the ProtoPNet loss on those images.

``make_adversary(schedule)`` gives the callable the trainer applies to each
batch, ``adversary(model, images, labels) -> images``, or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from protobench.attacks.pairs import select_pairs
from protobench.attacks.perturb import run_attack
from protobench.attacks.presets import AttackPreset, load_attack
from protobench.errors import ProtobenchError


@dataclass
class Adversary:
    """The schedule's defence, ``adversary(model, images, labels) -> images``.

    ``generator`` draws its random starts; a resumed training restores it
    (training/resume.py).
    """

    attack: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
    generator: torch.Generator

    def __call__(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.attack(model, images, labels, self.generator)


def fgsm_examples(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float,
                  alpha: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Wong et al.'s FGSM with a random start: x + delta in [0, 1], ||delta||_inf <= eps.

    The model stays in the mode it is in (training, as in Wong et al.); only
    the input gets a gradient, so no parameter gradient is left behind.
    """
    images = images.detach()
    noise = torch.rand(images.shape, generator=generator, dtype=images.dtype)
    delta = ((noise.to(images.device) * 2 - 1) * eps)
    delta = ((images + delta).clamp(0, 1) - images).requires_grad_(True)
    loss = F.cross_entropy(model(images + delta), labels)
    (grad,) = torch.autograd.grad(loss, delta)
    delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
    return (images + delta).clamp(0, 1).detach()


def masked_examples(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                    preset: AttackPreset, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image attacked by ``preset`` on its top-1 prototype (one pair per image)."""
    modes = [m.training for m in model.modules()]
    try:
        pairs = select_pairs(model, images.detach(), labels, None, preset)
        [result] = run_attack(model, images, pairs, preset, generator)
    finally:  # frozen() restores the wrapper's flag only; training mode lives in the submodules
        for m, flag in zip(model.modules(), modes):
            m.training = flag
    return result.x_adv.detach()


def masked_preset(name: str, eps: float, steps: int = 0) -> AttackPreset:
    """The training attack: preset ``name`` on the top-1 prototype, at ``eps`` (and ``steps``)."""
    preset = load_attack(name, eps=eps, k=1, prototypes="top-k", **({"steps": steps} if steps else {}))
    if preset.kind != "masked-pgd":
        raise ProtobenchError(f"adversarial = {name!r} is a {preset.kind} attack; adversarial "
                              "training takes 'fgsm' or a masked attack preset (kind masked-pgd)")
    return preset


def make_adversary(adversarial: str, eps: float, alpha: float, steps: int, seed: int) -> Adversary | None:
    """The schedule's defence as ``adversary(model, images, labels) -> images``, or None."""
    if not adversarial:
        return None
    generator = torch.Generator().manual_seed(seed + 1_000_003)
    if adversarial == "fgsm":
        return Adversary(lambda model, images, labels, g: fgsm_examples(model, images, labels, eps, alpha, g),
                         generator)
    preset = masked_preset(adversarial, eps, steps)

    def attack(model, images, labels, g):
        device_generator = torch.Generator(device=images.device).manual_seed(
            int(torch.randint(0, 2**62, (1,), generator=g)))
        return masked_examples(model, images, labels, preset, device_generator)

    return Adversary(attack, generator)
