"""How the attack runs the model: bf16 autocast and ``torch.compile``, both off by default.

They change how the attack *searches*, never how results are *measured*:
the runner and ``protobench.attack`` measure every attacked image with the
model itself, in fp32. And inside bf16 the prototype head stays fp32
(``PPNet``: distances, similarities, last layer), as ProtoPNet's squared
distance ||z||^2 - 2 z.p + ||p||^2 cancels near a prototype and the log
similarity magnifies what is left (``protobench.devices.exact_fp32``); only
the backbone and add-on layers run in bf16.

Agreement with fp32 is a test (``tests/test_attacks_acceleration.py``): on
the same pairs, the bf16 attack's success rates stay within the tolerance
stated there; compile gives the fp32 numbers up to float order.
"""

from __future__ import annotations

import functools
import weakref

import torch
from torch import nn

from protobench.errors import ProtobenchError
from protobench.model.protocol import attack_maps, class_relation

PRECISIONS = ("fp32", "bf16")

# one compiled version of each model, so that every batch of a run reuses its compilation
_COMPILED: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


class AcceleratedModel(nn.Module):
    """``model`` as the attack sees it: the same maps and logits, under bf16 autocast
    and/or compiled. Outputs are fp32; everything else is read from ``model``."""

    def __init__(self, model: nn.Module, precision: str = "fp32", compile: bool = False) -> None:
        super().__init__()
        self.model = model
        self.precision = precision
        self.train(model.training)  # a frozen() around the wrapper restores the model's own mode
        if compile:
            if model not in _COMPILED:
                _COMPILED[model] = (torch.compile(model.similarity_maps),
                                    torch.compile(functools.partial(attack_maps, model)),
                                    torch.compile(model))
            self._maps, self._attack_maps, self._logits = _COMPILED[model]
        else:
            self._maps, self._attack_maps, self._logits = (
                model.similarity_maps, functools.partial(attack_maps, model), model)

    def _autocast(self, x: torch.Tensor):
        return torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        with self._autocast(x):
            return _compiled_call(self._maps, x).float()

    def attack_maps(self, x: torch.Tensor) -> torch.Tensor:
        with self._autocast(x):
            return _compiled_call(self._attack_maps, x).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self._autocast(x):
            return _compiled_call(self._logits, x).float()

    def explain(self, x: torch.Tensor):
        return self.model.explain(x)  # measuring: the model itself, in fp32

    @property
    def img_size(self) -> int:
        return self.model.img_size

    @property
    def prototype_class(self) -> torch.Tensor:
        return self.model.prototype_class

    @property
    def class_relation(self) -> torch.Tensor:
        return class_relation(self.model)


def accelerated(model: nn.Module, precision: str = "fp32", compile: bool = False) -> nn.Module:
    """The model the attack runs: ``model`` itself for fp32 without compile."""
    if precision not in PRECISIONS:
        raise ProtobenchError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if isinstance(model, AcceleratedModel):  # an ensemble's members share their ensemble's
        return model
    if precision == "fp32" and not compile:
        return model
    on_cuda = any(p.is_cuda for p in model.parameters())
    if precision == "bf16" and on_cuda and not torch.cuda.is_bf16_supported():
        raise ProtobenchError(f"precision 'bf16' is not supported by {torch.cuda.get_device_name()}; "
                              "use precision = \"fp32\"")
    return AcceleratedModel(model, precision, compile)


def measured(model: nn.Module) -> nn.Module:
    """The model results are measured with: the model itself, unwrapped from ``accelerated``."""
    return model.model if isinstance(model, AcceleratedModel) else model


def _compiled_call(function, x: torch.Tensor) -> torch.Tensor:
    """Call ``function``; a compiler that cannot work here is one clear error, not a traceback."""
    try:
        return function(x)
    except Exception as err:  # torch._dynamo's BackendCompilerFailed and the compilers' own errors
        if type(err).__module__.startswith(("torch._dynamo", "torch._inductor")):
            raise ProtobenchError(f"torch.compile failed on this machine ({type(err).__name__}: "
                                  f"{str(err).splitlines()[0][:200]}); run with compile = false") from None
        raise
