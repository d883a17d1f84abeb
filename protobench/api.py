"""The one-call attack: a model, a batch of images, a preset, and a per-pair report.

::

    report = protobench.attack(model, images, labels, "pgd-local", eps="8/255")
    report.rates()          # {"peak_moved": 0.62, "out_of_box": 0.5, ...}
    report.x_adv            # (N, 3, H, W), one attacked image per (image, prototype) pair

or, in the style of torchattacks::

    atk = protobench.LocalPGD(model, eps=8/255)
    report = atk(images, labels)

``model`` is any :class:`~protobench.model.protocol.PrototypeModel` (protobench's
ProtoPNet, a model name, or a foreign model wrapped in a
:class:`~protobench.model.protocol.PrototypeAdapter`). The report holds every
metric of docs/metrics.md per pair; :meth:`AttackReport.summary` aggregates
them with the runner's intervals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from protobench.attacks.inputs import check_images
from protobench.attacks.measure import measure
from protobench.attacks.pairs import Pairs, select_pairs
from protobench.attacks.perturb import attack_in_batches
from protobench.attacks.kinds import get_kind
from protobench.attacks.presets import AttackPreset, load_attack
from protobench.errors import ProtobenchError
from protobench.metrics import PairMetrics, summarize
from protobench.metrics.criteria import RATES, rate_columns
from protobench.model.protocol import check_prototype_model

# What each rate counts, in the words of the tables (docs/metrics.md).
RATE_MEANINGS = {rate.column: rate.meaning for rate in RATES}


@dataclass
class AttackReport:
    """One attack on N (image, prototype) pairs, with every per-pair metric.

    preset     the attack as run (its threat model, objective, target rule)
    pairs      the pairs and their regions on the clean images
    x_adv      (N, 3, H, W) the attacked image of each pair, in [0, 1]
    metrics    every metric of docs/metrics.md, one value per pair
    sim_after  (N, h, w) S_j of each pair's prototype on its attacked image
    seconds    wall time of the attack (not of the measurement)
    control    the same metrics for the uniform-noise control of the same
               mask and eps, when asked for (``control=True``)
    """

    preset: AttackPreset
    pairs: Pairs
    x_adv: torch.Tensor
    metrics: PairMetrics
    sim_after: torch.Tensor
    seconds: float
    control: PairMetrics | None = None

    @property
    def attack(self) -> str:
        return self.preset.name

    def __len__(self) -> int:
        return len(self.pairs)

    def rates(self, control: bool = False) -> dict[str, float]:
        """The fraction of pairs for which each criterion holds (see ``RATE_MEANINGS``)."""
        metrics = self.control if control else self.metrics
        if metrics is None:
            raise ProtobenchError("this report has no noise control; call attack(..., control=True)")
        return {name: float(getattr(metrics, name).float().mean()) for name in rate_columns()}

    def summary(self, control: bool = False) -> dict[str, float | int]:
        """Means with 95% bootstrap intervals and rates with Wilson intervals (the runner's row)."""
        metrics = self.control if control else self.metrics
        if metrics is None:
            raise ProtobenchError("this report has no noise control; call attack(..., control=True)")
        return summarize(metrics)

    def to_frame(self):
        """One row per pair: image index, prototype, label, then every metric (a pandas DataFrame)."""
        import pandas as pd

        frame = pd.DataFrame(self.metrics.to_dict())
        frame.insert(0, "label", self.pairs.label.cpu().numpy())
        frame.insert(0, "prototype", self.pairs.prototype.cpu().numpy())
        frame.insert(0, "image", self.pairs.image_index.cpu().numpy())
        return frame

    def __repr__(self) -> str:
        r = self.rates()
        return (f"AttackReport({self.attack!r}, {len(self)} pairs, eps {self.preset.eps:.4g}: "
                f"peak leaves R {r['peak_moved']:.0%}, leaves the box {r['out_of_box']:.0%}, "
                f"in an irrelevant cell {r['peak_irrelevant']:.0%}, in the target "
                f"{r['peak_in_target']:.0%}; prediction kept {r['pred_kept']:.0%}; "
                f"{self.seconds:.2f} s)")


def attack(model: nn.Module | str | Path, images: torch.Tensor, labels: torch.Tensor | Sequence[int],
           attack: str | Path | AttackPreset = "pgd-local",
           relevance: torch.Tensor | Sequence[torch.Tensor | None] | None = None, *,
           seed: int = 0, control: bool = False, batch_size: int = 64,
           **overrides: Any) -> AttackReport:
    """Attack every (image, prototype) pair of a batch and measure it.

    model      a PrototypeModel, or a model name / checkpoint path (loaded on the CPU)
    images     (B, 3, H, W) floats in [0, 1], the model's size
    labels     (B,) true classes
    attack     a preset name (attacks/<name>.toml), a TOML path or an AttackPreset
    relevance  bool (B, H, W) object masks (True on the object), one per image
               or None; without them the irrelevant cells are those outside R
    seed       seeds the random start and restarts (the same seed, the same x_adv)
    control    also measure the uniform-noise control of the same mask and eps
    overrides  any preset value, e.g. eps="4/255", steps=100, k=3, method="apgd"

    A preset that yields several settings (a JPEG sweep over qualities) must
    be narrowed to one (``qualities=50``); sweeps are the runner's job
    (:func:`protobench.benchmark`).
    """
    model = _prototype_model(model)
    preset = _preset(attack, overrides)
    settings = get_kind(preset.kind).settings(preset)
    if len(settings) != 1:
        raise ProtobenchError(f"attack {preset.name!r} yields {len(settings)} settings {settings}; "
                              "narrow it to one for one report (a JPEG sweep: qualities=<one of "
                              "them>), or use protobench.benchmark for the sweep")
    images = check_images(images, model).detach()
    device = images.device
    labels = torch.as_tensor(labels, device=device).long()
    if labels.shape != (len(images),):
        raise ProtobenchError(f"labels must have shape ({len(images)},), one per image; "
                              f"got {tuple(labels.shape)}")
    if batch_size < 1:
        raise ProtobenchError(f"batch_size={batch_size} must be an integer >= 1")
    pairs = select_pairs(model, images, labels, relevance, preset)
    generator = torch.Generator(device=device).manual_seed(seed)
    start = time.perf_counter()
    x_adv = attack_in_batches(model, images, pairs, preset, generator, batch_size)
    seconds = time.perf_counter() - start
    metrics, sim_after = measure(model, images, pairs, x_adv, batch_size)
    control_metrics = None
    if control:
        noise = attack_in_batches(model, images, pairs, preset, generator, batch_size, control=True)
        control_metrics = measure(model, images, pairs, noise, batch_size)[0]
    return AttackReport(preset, pairs, x_adv, metrics, sim_after, seconds, control_metrics)


def _prototype_model(model: nn.Module | str | Path) -> nn.Module:
    """A model name or checkpoint path loaded (on the CPU), or the model itself; checked."""
    if isinstance(model, (str, Path)):
        from protobench.model.checkpoint import load_model
        model = load_model(model)
    return check_prototype_model(model)


def _preset(attack: str | Path | AttackPreset, overrides: dict[str, Any]) -> AttackPreset:
    """The preset by name, path or object, with the overrides (None values ignored) checked."""
    if not isinstance(attack, AttackPreset):
        return load_attack(attack, **overrides)
    return attack.with_options(**overrides)


class Attack:
    """An attack bound to a model, called like a torchattacks attack: ``atk(images, labels)``.

    ``Attack(model, "pgd-local", eps=8/255)``; the named subclasses fix the
    preset: :class:`LocalPGD`, :class:`HeadOnStomach`, :class:`AutoLocal`.
    Calling it returns an :class:`AttackReport`; ``report.x_adv`` holds the
    attacked images, one per (image, prototype) pair.
    """

    preset_name = "pgd-local"

    def __init__(self, model: nn.Module | str | Path, attack: str | Path | AttackPreset | None = None,
                 *, seed: int = 0, control: bool = False, batch_size: int = 64,
                 **overrides: Any) -> None:
        self.model = _prototype_model(model)
        self.preset = _preset(attack if attack is not None else self.preset_name, overrides)
        self.seed, self.control, self.batch_size = seed, control, batch_size

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | Sequence[int],
                 relevance: torch.Tensor | Sequence[torch.Tensor | None] | None = None) -> AttackReport:
        return attack(self.model, images, labels, self.preset, relevance, seed=self.seed,
                      control=self.control, batch_size=self.batch_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.preset.name!r}, eps={self.preset.eps:.4g}, steps={self.preset.steps})"


class LocalPGD(Attack):
    """Masked PGD inside the prototype's high-activation box (preset ``pgd-local``)."""

    preset_name = "pgd-local"


class HeadOnStomach(Attack):
    """Hoffmann et al.'s attack 1: move the prototype's peak to a target region
    (preset ``pgd-head-on-stomach``)."""

    preset_name = "pgd-head-on-stomach"


class AutoLocal(Attack):
    """Per pair, the worst case over several masked attacks of the same threat
    model (preset ``auto-local``, AutoAttack's rule)."""

    preset_name = "auto-local"
