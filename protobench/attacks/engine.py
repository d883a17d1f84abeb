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

from protobench.attacks.progress import step_taken
from protobench.errors import ProtobenchError
from protobench.model.modes import frozen
from protobench.threat import check_threat_model


ObjectiveFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
Rows = tuple[torch.Tensor, int]  # (index (N,) long, total): N pairs as rows of a batch of total

ZERO_GRADIENT = (
    "the objective's gradient with respect to the input image is identically zero on the "
    "first step, for every pair: the attack cannot move. The objective must depend on the "
    "image through differentiable operations (no argmax, rounding, detach or constant "
    "similarity maps)")


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


class MaskedAttack:
    """What every masked attack shares: the threat model, random starts inside
    the mask, the projection, restarts that keep the best per pair, the
    zero-gradient and NaN guards. A subclass writes ``run_once``, one run
    from a start point, readable next to its paper's pseudo-code.

    ``success``, a callable (model, x) -> (N,) (e.g. a
    :class:`~protobench.attacks.objectives.PeakMargin`), scores each
    restart's result per pair; the highest is kept. Default: the objective.

    Early exit (``early_exit``, with a ``success`` score > 0 exactly at success, and
    ``select(index)`` on the objective and the score): a restart runs only on the pairs
    that no earlier restart brought to success, as AutoAttack runs each next attack only
    on the points not yet broken (Croce & Hein 2020). Per pair the best of the restarts
    it ran is kept, so a pair keeps its first success. Every restart still draws the
    random starts of all pairs, so a pair's starts, and so its result, do not depend on
    which other pairs run: the pairs that succeed are those of the full search, up to the
    float effects of a smaller batch (about 1e-5 in a similarity; research/early_exit.py).
    """

    def __init__(self, model: nn.Module, norm: str = "Linf", eps: float = 8 / 255,
                 alpha: float = 2 / 255, steps: int = 10, random_start: bool = True,
                 restarts: int = 1, early_exit: bool = False) -> None:
        check_threat_model(norm, eps, alpha, steps, restarts)
        self.model = model
        self.norm = norm
        self.eps = float(eps)
        self.alpha = float(alpha)
        self.steps = steps
        self.random_start = random_start
        self.restarts = restarts
        self.early_exit = early_exit

    def __call__(self, images: torch.Tensor, mask: torch.Tensor, objective: ObjectiveFn,
                 generator: torch.Generator | None = None, success: ObjectiveFn | None = None,
                 rows: Rows | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        with frozen(self.model):
            return self.forward(images, mask, objective, generator, success, rows)

    def forward(self, images: torch.Tensor, mask: torch.Tensor, objective: ObjectiveFn,
                generator: torch.Generator | None = None, success: ObjectiveFn | None = None,
                rows: Rows | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x_adv (N, 3, H, W) and its score (N,). ``rows`` (index (N,), total): these N pairs
        are those rows of ``total`` pairs, whose random starts they draw (:meth:`start`)."""
        images = images.detach()
        mask = mask.bool().expand_as(images)
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        generator = on_device(generator, images.device)
        score_of = success or objective
        early_exit = self.early_exit and success is not None

        # the zero-gradient check is for the whole batch: some rows of it (the pairs an
        # ensemble has left) may have no gradient and simply cannot move
        whole = rows is None or len(rows[0]) == rows[1]
        best_x = best_value = None
        for restart in range(self.restarts):
            x = self.start(images, mask, generator, rows) if self.random_start else images.clone()
            if best_x is None:  # the first restart's result stands, even at a score of -inf
                best_x = self.run_once(x, images, mask, objective, first=whole)
                best_value = self.score(score_of, best_x)
                continue
            if not early_exit:
                x = self.run_once(x, images, mask, objective, first=False)
                value = self.score(score_of, x)
                better = value > best_value
                best_x = torch.where(better.view(-1, 1, 1, 1), x, best_x)
                best_value = torch.where(better, value, best_value)
                continue
            todo = (best_value <= 0).nonzero().flatten()
            if len(todo) == 0:
                continue  # nothing left to run; the starts above are still drawn
            x = self.run_once(x[todo], images[todo], mask[todo], objective.select(todo), first=False)
            value = self.score(success.select(todo), x)
            better = value > best_value[todo]
            best_x[todo] = torch.where(better.view(-1, 1, 1, 1), x, best_x[todo])
            best_value[todo] = torch.where(better, value, best_value[todo])
        return best_x, best_value

    def score(self, score_of: ObjectiveFn, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            value = score_of(self.model, x)
        check_finite(value)
        return value

    def skip(self, like: torch.Tensor, total: int, generator: torch.Generator) -> None:
        """Draw the random starts of a run on ``total`` pairs without running it (an ensemble's
        member that has no pair left to attack), so that later draws stay those of the full search."""
        if self.random_start:
            generator = on_device(generator, like.device)
            for _ in range(self.restarts):
                self._start_draws((total, *like.shape[1:]), generator, like)

    def run_once(self, x: torch.Tensor, images: torch.Tensor, mask: torch.Tensor,
                 objective: ObjectiveFn, first: bool) -> torch.Tensor:
        """One run from the start point x; returns its result (N, 3, H, W)."""
        raise NotImplementedError

    def value_and_grad(self, objective: ObjectiveFn, x: torch.Tensor, mask: torch.Tensor,
                       check: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The objective at x (N,) and its gradient (zeros where unused); one forward and
        backward. Every step refuses NaN; ``check`` (the first step) also refuses a
        gradient that is zero inside every pair's mask."""
        x = x.detach().requires_grad_(True)
        value = objective(self.model, x)
        if check and not value.requires_grad:
            raise ProtobenchError(ZERO_GRADIENT)
        grad, = torch.autograd.grad(value.sum(), x, allow_unused=True)
        grad = torch.zeros_like(x) if grad is None else grad
        check_finite(value, grad)
        if check and not torch.where(mask, grad, 0).any():
            raise ProtobenchError(ZERO_GRADIENT)
        step_taken()
        return value.detach(), grad

    def start(self, images: torch.Tensor, mask: torch.Tensor, generator: torch.Generator,
              rows: Rows | None = None) -> torch.Tensor:
        """A random point of the eps ball, inside the mask, clipped to [0, 1].

        With ``rows`` (index, total) the draws are those of ``total`` pairs, of which
        these are rows ``index``: a pair's start is the one the full batch gives it.
        """
        shape = images.shape if rows is None else torch.Size((rows[1], *images.shape[1:]))
        draws = self._start_draws(shape, generator, images)
        if rows is not None:
            draws = tuple(d[rows[0]] for d in draws)
        if self.norm == "Linf":
            delta = (2 * draws[0] - 1) * self.eps
        else:  # uniform radius in [0, eps] along a Gaussian direction (as torchattacks' PGDL2)
            direction = torch.where(mask, draws[0], 0)
            radius = draws[1] * self.eps
            delta = direction / _per_pair_norm(direction).clamp_min(1e-12) * radius
        return torch.where(mask, (images + delta).clamp(0, 1), images)

    def _start_draws(self, shape: torch.Size, generator: torch.Generator,
                     like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The random numbers of one start of ``shape[0]`` pairs, in the order they are drawn."""
        if self.norm == "Linf":
            return (_rand(shape, generator, like),)
        return (_rand(shape, generator, like, normal=True),
                _rand((shape[0], 1, 1, 1), generator, like))

    def ascent(self, x: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor,
               step_size: float | torch.Tensor) -> torch.Tensor:
        """x plus one steepest-ascent step of the norm, on the masked gradient (not projected)."""
        grad = torch.where(mask, grad, 0)
        if self.norm == "Linf":
            return x + step_size * grad.sign()
        return x + step_size * grad / (_per_pair_norm(grad) + 1e-10)

    def project(self, x: torch.Tensor, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x projected onto the eps ball around the images, clipped to [0, 1], clean outside M."""
        delta = x - images
        if self.norm == "Linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            norm = _per_pair_norm(delta)
            delta = delta * torch.where(norm > self.eps, self.eps / norm, 1.0)
        return torch.where(mask, (images + delta).clamp(0, 1), images)


class MaskedPGD(MaskedAttack):
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

    and keep, per pair, the restart whose final x scores highest (``success``,
    default the objective).

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
        - success: callable like objective, the score restarts are compared by.
        - output: x_adv (N, 3, H, W) and its score (N,).

    Raises a ProtobenchError if the gradient is identically zero on the first
    step (the attack could not move) or the objective is NaN.

    Examples::
        >>> attack = MaskedPGD(model, eps=8/255, alpha=2/255, steps=40)
        >>> x_adv, values = attack(images, mask, objective, generator=torch.Generator().manual_seed(0))
    """

    def run_once(self, x: torch.Tensor, images: torch.Tensor, mask: torch.Tensor,
                 objective: ObjectiveFn, first: bool) -> torch.Tensor:
        for step in range(self.steps):
            _, grad = self.value_and_grad(objective, x, mask, check=first and step == 0)
            x = self.step(x, grad, images, mask)
        return x

    def step(self, x: torch.Tensor, grad: torch.Tensor, images: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """One ascent step, the projection onto the eps ball, clipping, the mask."""
        return self.project(self.ascent(x, grad, mask, self.alpha), images, mask)


class MaskedAPGD(MaskedAttack):
    r"""Masked Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial
    robustness with an ensemble of diverse parameter-free attacks"), every step
    confined to each pair's mask M.

    Step size eta starts at 2 eps (``alpha`` is not used: the schedule sets the
    step), per pair. With z = P(x_k + eta sign(g_k * M)) and momentum 0.75
    (none on the first step):

        x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))

    where P projects onto the eps ball inside M. At checkpoints w_j (the first
    after 0.22 N steps, then ever closer, never under 0.06 N apart) a pair
    halves its eta and goes back to its best point when (1) the objective
    rose in at most 75% of the steps since the last checkpoint, or (2) eta
    was not halved at the last checkpoint and the best value has not improved
    since. Returns, per pair, the best point seen (highest objective).

    Arguments and shapes as :class:`MaskedPGD`.
    """

    momentum = 0.75
    rho = 0.75  # condition (1): the fraction of steps that must improve

    def run_once(self, x: torch.Tensor, images: torch.Tensor, mask: torch.Tensor,
                 objective: ObjectiveFn, first: bool) -> torch.Tensor:
        n = self.steps
        period = max(int(0.22 * n), 1)
        shrink, shortest = max(int(0.03 * n), 1), max(int(0.06 * n), 1)
        eta = torch.full((len(x), 1, 1, 1), 2 * self.eps, device=x.device, dtype=x.dtype)

        value, grad = self.value_and_grad(objective, x, mask, check=first)
        best_x, best_value, best_grad = x.clone(), value.clone(), grad.clone()
        history = [value]                                  # objective after each step
        best_at_check = best_value.clone()
        halved_at_check = torch.ones_like(value, dtype=torch.bool)
        x_prev, since_check = x.clone(), 0
        for k in range(n):
            a = self.momentum if k > 0 else 1.0
            z = self.project(self.ascent(x, grad, mask, eta), images, mask)
            x, x_prev = self.project(x + a * (z - x) + (1 - a) * (x - x_prev), images, mask), x

            value, grad = self.value_and_grad(objective, x, mask)
            improved = value > best_value
            best_x = torch.where(improved.view(-1, 1, 1, 1), x, best_x)
            best_grad = torch.where(improved.view(-1, 1, 1, 1), grad, best_grad)
            best_value = torch.where(improved, value, best_value)
            history.append(value)

            since_check += 1
            if since_check == period:
                recent = torch.stack(history[-(period + 1):])
                rises = (recent[1:] > recent[:-1]).sum(dim=0)
                oscillating = rises <= self.rho * period                # condition (1)
                stalled = ~halved_at_check & (best_at_check >= best_value)  # condition (2)
                halve = oscillating | stalled
                eta = torch.where(halve.view(-1, 1, 1, 1), eta / 2, eta)
                x = torch.where(halve.view(-1, 1, 1, 1), best_x, x)
                grad = torch.where(halve.view(-1, 1, 1, 1), best_grad, grad)
                halved_at_check, best_at_check = halve, best_value.clone()
                since_check, period = 0, max(period - shrink, shortest)
        return best_x


MASKED_METHODS = {"pgd": MaskedPGD, "apgd": MaskedAPGD}  # preset key `method` of masked attacks


def check_finite(value: torch.Tensor, grad: torch.Tensor | None = None) -> None:
    """NaN in the objective or its gradient means NaN in the model's output.

    Checked at every step: a NaN score never wins a comparison, so an attack
    that met NaN after its first step would otherwise return an earlier point
    without a word, and a NaN gradient has sign 0 and silently freezes its pixels.
    """
    if torch.isnan(value).any():
        bad = torch.isnan(value).nonzero().flatten().tolist()
        raise ProtobenchError(f"the model's output is NaN for pair(s) {bad}; "
                              "check the model's weights and the input images")
    if grad is not None and torch.isnan(grad).any():
        bad = torch.isnan(grad).flatten(1).any(dim=1).nonzero().flatten().tolist()
        raise ProtobenchError(f"the objective's gradient is NaN for pair(s) {bad}; "
                              "check the model's weights and the input images")
