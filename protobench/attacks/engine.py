"""The masked PGD engine: one attack on a batch of N (image, prototype) pairs.

Every pair has its own pixel mask M, its own prototype and its own
objective regions, and all pairs share one forward and one backward pass per
step. The perturbation is exactly zero outside M after every step: the
update is written with ``torch.where``, so pixels outside M keep their
clean value bit for bit.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from protobench.errors import ProtobenchError
from protobench.model.modes import frozen

NORMS = ("Linf", "L2")

ObjectiveFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]

ZERO_GRADIENT = (
    "the objective's gradient with respect to the input image is identically zero on the "
    "first step, for every pair: the attack cannot move. The objective must depend on the "
    "image through differentiable operations (no argmax, rounding, detach or constant "
    "similarity maps)")


def check_budget(norm: str, eps: float, alpha: float, steps: int, restarts: int = 1) -> None:
    """A :class:`ProtobenchError` naming the first bad threat-model value."""
    if norm not in NORMS:
        raise ProtobenchError(f"unknown norm {norm!r}; choose one of: {', '.join(NORMS)}")
    if not 0.0 <= eps <= 1.0:
        raise ProtobenchError(f"eps={eps!r} is outside [0, 1] (pixel units, e.g. 8/255)")
    if not alpha > 0:
        raise ProtobenchError(f"alpha={alpha!r} must be > 0 (pixel units, e.g. 2/255)")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ProtobenchError(f"steps={steps!r} must be an integer >= 1")
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ProtobenchError(f"restarts={restarts!r} must be an integer >= 1")


def on_device(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """``generator`` itself if it lives on ``device``, else one seeded from it there.

    Random starts are drawn where the images are: drawing them on the CPU and
    copying them to a GPU would cost more than a few attack steps.
    """
    if generator.device.type == device.type:
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return torch.Generator(device=device).manual_seed(seed)


def _rand(shape: torch.Size, generator: torch.Generator, like: torch.Tensor,
          normal: bool = False) -> torch.Tensor:
    draw = torch.randn if normal else torch.rand
    return draw(shape, generator=generator, device=like.device, dtype=like.dtype)


def _per_pair_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(p=2, dim=1).view(-1, 1, 1, 1)


class MaskedPGD:
    r"""Masked PGD (Madry et al. 2018, "Towards Deep Learning Models Resistant to
    Adversarial Attacks") on N (image, prototype) pairs, each inside its own mask,
    as in Hoffmann et al. 2021 ("This Looks Like That... Does it?").

    For each restart: start at x0 (+ uniform noise inside M if random_start),
    then ``steps`` times

        g      = grad_x sum_i objective_i(x)           (one forward, one backward)
        x      = x + alpha * sign(g * M)               (Linf)
               = x + alpha * (g * M) / ||g * M||_2     (L2)
        delta  = project(x - x0) onto the eps ball
        x      = where(M, clip(x0 + delta, 0, 1), x0)

    and keep, per pair, the restart whose final x has the highest objective.

    Arguments:
        model (nn.Module): pixel-space model (the objective calls it); put in
            eval mode with frozen parameters during the attack, restored after.
        norm (str): 'Linf' or 'L2'. (Default: 'Linf')
        eps (float): radius of the perturbation, pixel units in [0, 1]. (Default: 8/255)
        alpha (float): step size, pixel units. (Default: 2/255)
        steps (int): steps per restart. (Default: 10)
        random_start (bool): start from uniform noise inside the mask. (Default: True)
        restarts (int): independent runs; the best per pair is kept. (Default: 1)

    Shape:
        - images: (N, 3, H, W) in [0, 1], one per pair (repeat an image for
          several prototypes).
        - mask: (N, 1, H, W) or (N, 3, H, W) bool, where each pair may change.
        - objective: callable (model, x (N, 3, H, W)) -> (N,) values to maximise.
        - generator: torch.Generator of the random starts (default: seed 0); a
          CPU generator seeds one on the images' device.
        - output: x_adv (N, 3, H, W) and the objective at x_adv (N,).

    Raises a ProtobenchError if the gradient is identically zero on the first
    step (the attack could not move) or the objective is NaN.

    Examples::
        >>> attack = MaskedPGD(model, eps=8/255, alpha=2/255, steps=40)
        >>> x_adv, values = attack(images, mask, objective, generator=torch.Generator().manual_seed(0))
    """

    def __init__(self, model: nn.Module, norm: str = "Linf", eps: float = 8 / 255,
                 alpha: float = 2 / 255, steps: int = 10, random_start: bool = True,
                 restarts: int = 1) -> None:
        check_budget(norm, eps, alpha, steps, restarts)
        self.model = model
        self.norm = norm
        self.eps = float(eps)
        self.alpha = float(alpha)
        self.steps = steps
        self.random_start = random_start
        self.restarts = restarts

    def __call__(self, images: torch.Tensor, mask: torch.Tensor, objective: ObjectiveFn,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        with frozen(self.model):
            return self.forward(images, mask, objective, generator)

    def forward(self, images: torch.Tensor, mask: torch.Tensor, objective: ObjectiveFn,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        images = images.detach()
        mask = mask.bool().expand_as(images)
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        generator = on_device(generator, images.device)

        best_x = images.clone()
        best_value = torch.full((len(images),), float("-inf"), device=images.device)
        for restart in range(self.restarts):
            x = self.start(images, mask, generator) if self.random_start else images.clone()
            for step in range(self.steps):
                x.requires_grad_(True)
                value = objective(self.model, x)
                if restart == 0 and step == 0 and not value.requires_grad:
                    raise ProtobenchError(ZERO_GRADIENT)
                grad, = torch.autograd.grad(value.sum(), x, allow_unused=True)
                grad = torch.zeros_like(x) if grad is None else grad
                if restart == 0 and step == 0:
                    check_first_step(value, grad)
                x = self.step(x.detach(), grad, images, mask)
            with torch.no_grad():
                value = objective(self.model, x)
            better = value > best_value
            best_x = torch.where(better.view(-1, 1, 1, 1), x, best_x)
            best_value = torch.where(better, value, best_value)
        check_finite(best_value)
        return best_x, best_value

    def start(self, images: torch.Tensor, mask: torch.Tensor,
              generator: torch.Generator) -> torch.Tensor:
        """A random point of the eps ball, inside the mask, clipped to [0, 1]."""
        if self.norm == "Linf":
            delta = (2 * _rand(images.shape, generator, images) - 1) * self.eps
        else:  # uniform radius in [0, eps] along a Gaussian direction (as torchattacks' PGDL2)
            direction = torch.where(mask, _rand(images.shape, generator, images, normal=True), 0)
            radius = _rand((len(images), 1, 1, 1), generator, images) * self.eps
            delta = direction / _per_pair_norm(direction).clamp_min(1e-12) * radius
        return torch.where(mask, (images + delta).clamp(0, 1), images)

    def step(self, x: torch.Tensor, grad: torch.Tensor, images: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """One ascent step, the projection onto the eps ball, clipping, the mask."""
        grad = torch.where(mask, grad, 0)
        if self.norm == "Linf":
            x = x + self.alpha * grad.sign()
            delta = (x - images).clamp(-self.eps, self.eps)
        else:
            x = x + self.alpha * grad / (_per_pair_norm(grad) + 1e-10)
            delta = x - images
            norm = _per_pair_norm(delta)
            delta = delta * torch.where(norm > self.eps, self.eps / norm, 1.0)
        return torch.where(mask, (images + delta).clamp(0, 1), images)


def check_first_step(value: torch.Tensor, grad: torch.Tensor) -> None:
    """Refuse to run an attack that cannot move: NaN objective or an all-zero gradient."""
    check_finite(value)
    if not grad.any():
        raise ProtobenchError(ZERO_GRADIENT)


def check_finite(value: torch.Tensor) -> None:
    """NaN in the objective means NaN in the model's output (SPEC 9)."""
    if torch.isnan(value).any():
        bad = torch.isnan(value).nonzero().flatten().tolist()
        raise ProtobenchError(f"the model's output is NaN for pair(s) {bad}; "
                              "check the model's weights and the input images")
