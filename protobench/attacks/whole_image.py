"""Whole-image classification attacks through torchattacks, for robust accuracy.

:class:`~protobench.model.ProtoPNet` takes images in [0, 1] and returns
logits, so torchattacks sees it as any classifier and eps means the same as
in the masked engine (pixel units). The perturbation covers the whole image.

- ``pgd``: Madry et al. 2018 (torchattacks ``PGD``, ``PGDL2`` for L2);
- ``fgsm``: Goodfellow et al. 2015 (``FGSM``, Linf only);
- ``apgd``: Croce & Hein 2020 (``APGD``, cross-entropy loss).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from protobench.attacks.engine import frozen
from protobench.errors import ProtobenchError
from protobench.threat import check_threat_model

METHODS = ("pgd", "fgsm", "apgd")


def make_torchattack(model: nn.Module, method: str, norm: str = "Linf", eps: float = 8 / 255,
                     alpha: float = 2 / 255, steps: int = 10, random_start: bool = True,
                     restarts: int = 1, seed: int = 0):
    """The torchattacks attack named ``method`` with protobench's argument names.

    torchattacks is imported here, on first use, not when presets are read.
    """
    import torchattacks

    check_threat_model(norm, eps, alpha, steps, restarts)
    if method == "pgd":
        cls = torchattacks.PGD if norm == "Linf" else torchattacks.PGDL2
        return cls(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)
    if method == "fgsm":
        if norm != "Linf":
            raise ProtobenchError(f"fgsm supports norm 'Linf' only, got {norm!r}")
        return torchattacks.FGSM(model, eps=eps)
    if method == "apgd":
        return torchattacks.APGD(model, norm=norm, eps=eps, steps=steps, n_restarts=restarts,
                                 seed=seed, loss="ce")
    raise ProtobenchError(f"unknown whole-image method {method!r}; choose one of: {', '.join(METHODS)}")


def whole_image_attack(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                       method: str, norm: str = "Linf", eps: float = 8 / 255,
                       alpha: float = 2 / 255, steps: int = 10, random_start: bool = True,
                       restarts: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Untargeted whole-image attack on the labels; (B, 3, H, W) -> (B, 3, H, W) in [0, 1].

    torchattacks draws from torch's global random state; it is seeded from
    ``generator`` inside ``torch.random.fork_rng``, so the caller's global
    state is left as it was and the same generator gives the same images.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))
    attack = make_torchattack(model, method, norm, eps, alpha, steps, random_start, restarts, seed)
    devices = [images.device] if images.device.type == "cuda" else []
    with frozen(model), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return attack(images.detach(), labels).detach()
