"""ensemble: several masked attacks of one threat model; per pair the worst case
(AutoAttack's rule, Croce & Hein 2020). A wrapper over member presets of kind masked-pgd."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from protobench.attacks.acceleration import accelerated, measured
from protobench.attacks.engine import frozen
from protobench.attacks.kinds.base import AttackResult, refuse
from protobench.attacks.kinds.masked_pgd import (
    MaskedOptions, MaskedPGDKind, check_masked, masked_engine, success_margin,
)
from protobench.attacks.targets import retarget
from protobench.errors import ProtobenchError


@dataclass(frozen=True)
class EnsembleOptions(MaskedOptions):
    """members: tables of MEMBER_KEYS (attacks/presets.py); each member is the ensemble's
    preset with those keys changed, run as masked-pgd."""

    members: tuple[dict[str, Any], ...] = ()


class EnsembleKind(MaskedPGDKind):
    name = "ensemble"
    summary = "masked attacks of one threat model, per pair the worst case (AutoAttack's rule)"
    Options = EnsembleOptions

    def check(self, preset: Any) -> None:
        check_masked(preset)
        refuse(preset, "members", len(preset.members) > 0, "a non-empty list of [[members]] tables")
        refuse(preset, "success", preset.success_criterion != "objective",
               "a criterion (in-target, out-of-box, irrelevant, moved): members with "
               "different objectives can only be compared by one")
        if preset.mask == "target":  # the members must then perturb the same target
            refuse(preset, "members", all("target" not in m and "target_size" not in m
                                          for m in preset.members),
                   "members without target or target_size when the mask is 'target' "
                   "(they share the ensemble's threat model)")
        for i, member in enumerate(preset.member_presets()):
            if member.objective == "cross-entropy":
                raise ProtobenchError(f"ensemble member {i} of {preset.name!r}: objective "
                                      "'cross-entropy' is not a map objective")

    def uses_target(self, preset: Any) -> bool:
        return preset.mask == "target" or preset.success_criterion == "in-target"

    def run(self, model: nn.Module, images: torch.Tensor, pairs: Any, preset: Any,
            generator: torch.Generator, rows: Any = None) -> list[AttackResult]:
        """The members in turn; per pair, the image with the largest success margin.

        The ensemble reports each pair's worst case, so per pair it is never weaker than
        any of its members. The members share the ensemble's threat model (mask, norm,
        eps, steps); each brings its own method, objective and target rule. Ties go to
        the first member.

        Early exit (the default; ``exhaustive = true`` runs every member on every pair):
        a member attacks only the pairs that no earlier member brought to success, as
        AutoAttack runs each next attack only on the points not yet broken. Per pair the
        best of the members it met is kept, so a successful pair keeps its first success
        (a later member could only deepen it, and the rate counts success, not depth).
        Each member still draws the random starts of all pairs, so a pair's result does
        not depend on which others are left, and the same pairs succeed as in the full
        search (up to the float effects of a smaller batch, about 1e-5 in a similarity).
        """
        start = time.perf_counter()
        model = accelerated(model, preset.precision, preset.compile)
        margin = success_margin(preset, pairs)
        n = len(pairs)
        clean = images[pairs.image_index]
        member_kind = MaskedPGDKind()
        results = []
        best = torch.full((n,), float("-inf"), device=clean.device)
        for member in preset.member_presets():
            todo = (torch.arange(n, device=clean.device) if preset.exhaustive
                    else (best <= 0).nonzero().flatten())
            if len(todo) == 0:
                masked_engine(model, member).skip(clean, n, generator)
                results.append(AttackResult(member.name, clean, {}, torch.full_like(best, float("-inf")),
                                            0.0, attacked=torch.zeros(n, dtype=torch.bool,
                                                                      device=clean.device)))
                continue
            some = retarget(pairs[todo], member)
            result = member_kind.run(model, images, some, member, generator, (todo, n))[0]
            with torch.no_grad(), frozen(model):  # all members on the same scale, the measured one
                score = margin.select(todo)(measured(model), result.x_adv)
            if len(todo) < n:  # back to all pairs: the pairs not attacked hold the clean image
                attacked = torch.zeros(n, dtype=torch.bool, device=clean.device)
                attacked[todo] = True
                result.x_adv = clean.clone().index_copy_(0, todo, result.x_adv)
                score = torch.full_like(best, float("-inf")).index_copy_(0, todo, score)
                result.attacked = attacked
            result.objective = score
            best = torch.maximum(best, score)
            results.append(result)
        scores = torch.stack([r.objective for r in results])  # (members, N)
        chosen = scores.argmax(dim=0)
        x_adv = torch.stack([r.x_adv for r in results])[chosen, torch.arange(n)]
        return [AttackResult(preset.name, x_adv, {}, scores.amax(dim=0),
                             time.perf_counter() - start, chosen, results)]
