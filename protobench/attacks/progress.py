"""A hook for progress displays: a callable told of each gradient step an attack takes.

The engine calls :func:`step_taken` once per forward and backward pass; whoever shows
progress (the runner's bar) sets a callable for the duration of a piece of work with
:func:`reporting_steps`. Without one, a step costs one context-variable lookup.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

_on_step: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "protobench_on_step", default=None)


@contextlib.contextmanager
def reporting_steps(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback()`` after every gradient step taken inside the block."""
    token = _on_step.set(callback)
    try:
        yield
    finally:
        _on_step.reset(token)


def step_taken() -> None:
    callback = _on_step.get()
    if callback is not None:
        callback()
