"""Attacks on ProtoPNet's explanations and predictions (attacks/README.md).

The runner's two calls::

    preset = load_attack("pgd-local", eps="4/255")
    pairs = select_pairs(model, images, labels, relevance_masks, preset)
    results = run_attack(model, images, pairs, preset, generator)   # list[AttackResult]
    control = noise_control(model, images, pairs, preset, generator)

A *pair* is an image with one of its prototypes; ``select_pairs`` picks the
prototypes (top-k, class-top-k or a list), computes the regions of each pair
on the clean image (high-activation box and cells R, irrelevant cells I,
target cells T, pixel mask M) and records the clean outputs the metrics
compare against. ``run_attack`` perturbs every pair inside its mask; the
masked PGD engine attacks all pairs with one forward and one backward pass
per step.

Modules: ``pairs`` (Pairs, select_pairs), ``perturb`` (run_attack,
ensembles, the noise control), ``measure`` (every metric of the attacked
pairs), ``regions`` (R, I, T, M), ``objectives`` (displace, suppress, raise,
the margins, cross-entropy; a registry), ``engine`` (masked PGD and APGD),
``noise``, ``jpeg``, ``whole_image`` (classification attacks on the whole image), ``presets``
(attacks/*.toml), ``kinds`` (one module per attack kind, registered) and ``targets``
(the target rules, registered). This package face only re-exports them.
"""

from protobench.attacks.engine import MaskedAPGD, MaskedPGD
from protobench.attacks.kinds.jpeg import jpeg_compress
from protobench.attacks.measure import measure
from protobench.attacks.kinds.noise import uniform_noise
from protobench.attacks.objectives import MAP_OBJECTIVES, PeakMargin, map_objective
from protobench.attacks.kinds import ATTACK_KINDS, AttackKind, AttackResult, get_kind, register_kind
from protobench.attacks.kinds.masked_pgd import make_objective, success_margin
from protobench.attacks.pairs import Pairs, select_pairs
from protobench.attacks.perturb import (
    attack_in_batches, noise_control, pair_batches, run_attack,
)
from protobench.attacks.presets import AttackPreset, attack_names, load_attack, parse_fraction
from protobench.attacks.targets import TARGET_RULES, retarget, target_rule
from protobench.attacks.kinds.whole_image import whole_image_attack

__all__ = [
    "ATTACK_KINDS", "AttackKind", "TARGET_RULES", "get_kind", "register_kind", "target_rule",
    "AttackPreset", "AttackResult", "MAP_OBJECTIVES", "attack_in_batches", "pair_batches", "MaskedAPGD", "MaskedPGD", "Pairs",
    "PeakMargin", "attack_names", "jpeg_compress", "load_attack", "make_objective",
    "map_objective", "measure", "noise_control", "parse_fraction", "retarget", "run_attack",
    "select_pairs", "success_margin", "uniform_noise", "whole_image_attack",
]
