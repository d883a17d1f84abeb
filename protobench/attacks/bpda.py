"""BPDA through saturated sigmoids: the attack's gradient, never its measurement.

ProtoPNet's add-on layers end in a sigmoid (and so do ProtoPool's). Where a
model has learnt to drive that sigmoid to 0 or 1, its slope is e^-|a| and
the exact gradient of any objective through those latent channels all but
vanishes: a gradient attack sees no way to move them, whether or not one
exists. This is one of the obfuscated gradients of Athalye, Carlini and
Wagner (ICML 2018), and their remedy is BPDA, Backward Pass Differentiable
Approximation: keep the exact forward pass, and differentiate a smooth
stand-in on the way back.

``backward = "bpda"`` in a preset makes every ``nn.Sigmoid`` of the model,
for the duration of the attack, pass gradients as its tangent at 0 does
(a slope of 1/4, the true slope where the sigmoid is not saturated). The
forward values are the model's own, bit for bit, so every score the
attack keeps and every result measured afterwards is the real model's;
only the direction of the search changes. ``"exact"`` (the default)
differentiates the model as it is.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn

BACKWARDS = ("exact", "bpda")
SLOPE = 0.25  # the sigmoid's slope at 0


def _straight_through(module: nn.Module, inputs: tuple[torch.Tensor, ...],
                      output: torch.Tensor) -> torch.Tensor:
    """The sigmoid's own output, with the gradient of ``SLOPE * a`` towards its input a."""
    a = inputs[0]
    return output.detach() + SLOPE * (a - a.detach())  # a - a.detach() is exactly 0


@contextmanager
def gradient_surrogate(model: nn.Module, backward: str = "exact") -> Iterator[nn.Module]:
    """``model`` with the preset's backward pass while the block runs: unchanged for
    "exact"; for "bpda", every ``nn.Sigmoid`` of it differentiated as its tangent at 0.
    The hooks are removed when the block ends, also on an error."""
    if backward not in BACKWARDS:
        raise ValueError(f"backward must be one of {BACKWARDS}, not {backward!r}")
    handles = []
    if backward == "bpda":
        handles = [m.register_forward_hook(_straight_through)
                   for m in model.modules() if isinstance(m, nn.Sigmoid)]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()
