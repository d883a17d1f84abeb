"""Model recipes: ``models/<name>.toml`` says what to train and how.

    [model]   backbone, img_size, prototypes_per_class, prototype_depth, ...
    [data]    dataset, root, and the data set's own options (sizes, seed)
    [train]   seed, batch sizes, epochs of each stage, push epochs, ...
    [train.lr]    learning rates of the optimiser groups
    [train.loss]  loss coefficients

Every value has the original ProtoPNet's default; a recipe states only what
it changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from protobench.errors import ProtobenchError
from protobench.model.classifier import Architecture
from protobench.model.families import get_family
from protobench.paths import MODELS_DIR, check_keys, read_preset
from protobench.training.losses import LossCoefficients


def _finite_number(value: Any) -> bool:
    """A finite int or float (a bool is not a number here)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


@dataclass(frozen=True)
class LearningRates:
    """The original optimiser groups (settings.py of ProtoPNet)."""

    features: float = 1e-4            # joint
    add_on_layers: float = 3e-3       # joint
    prototype_vectors: float = 3e-3   # joint
    warm_add_on_layers: float = 3e-3
    warm_prototype_vectors: float = 3e-3
    last_layer: float = 1e-4
    proto_presence: float = 3e-3      # ProtoPool's slot logits, warm and joint
    classifier: float = 0.05          # PIP-Net's classifier
    pretrain: float = 1e-3            # backbone pre-training (stands in for ImageNet)
    weight_decay: float = 1e-3        # features and add-on layers
    joint_step_size: int = 5          # StepLR of the joint stage
    joint_gamma: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            number = _finite_number(value)
            if f.name == "joint_step_size":
                ok, allowed = number and isinstance(value, int) and value >= 1, "an integer >= 1 (epochs)"
            elif f.name == "weight_decay":
                ok, allowed = number and value >= 0, "a number >= 0"
            else:
                ok, allowed = number and value > 0, "a number > 0"
            if not ok:
                raise ProtobenchError(f"{f.name}={value!r} is invalid; allowed: {allowed}")


# see trainer.pretrain_backbone, trainer.pretrain_pretext, training.recipe_data
PRETRAIN_HEADS = ("image", "cells", "pretext", "other-classes")


@dataclass(frozen=True)
class Schedule:
    seed: int = 0
    batch_size: int = 80
    push_batch_size: int = 100
    test_batch_size: int = 100
    pretrain_epochs: int = 0              # backbone pre-training first (no ImageNet here)
    # "image": the task's images, as a plain classifier; "cells": every feature cell
    # labelled from the task's object masks; "pretext": dense labels of random shape
    # scenes, another distribution that reads nothing of the task (training/pretext.py);
    # "other-classes": a plain classifier of synth classes that the task does not have
    # (other part combinations, other images), as ImageNet is for CUB
    pretrain_head: str = "image"
    pretrain_images: int = 2000           # "pretext", "other-classes": how many images
    pretrain_classes: int = 40            # "other-classes": how many classes
    epochs: int = 10
    warm_epochs: int = 5
    push_epochs: tuple[int, ...] = (9,)   # push after these (0-based) epochs
    last_layer_epochs: int = 20           # last-layer epochs after each push
    augment: bool = True
    class_specific_push: bool = True
    # ProtoPool: the Gumbel-softmax scale of the slots rises as 1.3 * sqrt(a * e) over
    # the first gumbel_epochs epochs, a = (1000 / 1.3)^2 / gumbel_epochs, then stays 1000
    gumbel_epochs: int = 10
    # PIP-Net (training/pipnet.py): prototype_epochs of self-supervised prototype training
    # first (its epochs_pretrain), then `epochs`, the first finetune_epochs of them the
    # classifier alone; the backbone's early stages stay frozen through the prototype
    # stage and the first freeze_epochs of `epochs` (its freeze_epochs; CUB: 10)
    prototype_epochs: int = 10
    finetune_epochs: int = 3
    freeze_epochs: int = 10
    # Defences (training/adversarial.py, data/jpeg_experiment.py), composable:
    # jpeg_augment = {p = 0.5, quality = 20}: training images JPEG-compressed at random
    # adversarial = "fgsm" (Wong et al. 2020) or a masked attack preset ("pgd-local"):
    # the network trains on attacked images, at adversarial_eps; fgsm steps by
    # adversarial_alpha; a preset runs adversarial_steps steps (0: the preset's own)
    jpeg_augment: dict[str, Any] | None = None
    # noise_augment = {p = 0.5, eps = "8/255", region = "patch", size = [0.25, 0.5]}: uniform
    # noise at the threat model's budget on training images (data/noise_augment.py)
    noise_augment: dict[str, Any] | None = None
    # mixup = 0.5: every batch of the warm, joint and last-layer epochs mixed with
    # lam ~ Beta(0.5, 0.5) (training/mixup.py; ProtoPool's --mixup_data); 0: none
    mixup: float = 0.0
    # Fine-tuning and feature caching (training/feature_cache.py): trainable_blocks = K lets only
    # the backbone's last K blocks learn in the joint stage, the others frozen with their
    # BatchNorm statistics (0: the whole backbone frozen; -1: all of it learns, the original);
    # cached_augmentations = n computes the frozen part once for n fixed augmented copies of the
    # training images (and the test images) instead of every epoch (0: no cache)
    trainable_blocks: int = -1
    cached_augmentations: int = 0
    adversarial: str = ""
    adversarial_eps: float = 8 / 255
    adversarial_alpha: float = 10 / 255
    adversarial_steps: int = 0

    def __post_init__(self) -> None:
        if self.pretrain_head not in PRETRAIN_HEADS:
            raise ProtobenchError(f"pretrain_head must be one of "
                                  f"{', '.join(repr(h) for h in PRETRAIN_HEADS)}, "
                                  f"got {self.pretrain_head!r}")
        for name, lowest in (("seed", 0), ("batch_size", 1), ("push_batch_size", 1),
                             ("test_batch_size", 1), ("epochs", 1), ("warm_epochs", 0),
                             ("last_layer_epochs", 0),
                             ("pretrain_epochs", 0), ("pretrain_images", 1), ("pretrain_classes", 2),
                             ("adversarial_steps", 0), ("gumbel_epochs", 1),
                             ("prototype_epochs", 0), ("finetune_epochs", 0),
                             ("freeze_epochs", 0), ("trainable_blocks", -1),
                             ("cached_augmentations", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ProtobenchError(f"{name}={value!r} is invalid; allowed: an integer >= {lowest}")
        if not (_finite_number(self.mixup) and self.mixup >= 0):
            raise ProtobenchError(f"mixup={self.mixup!r} is invalid; allowed: a finite number >= 0 "
                                  "(mixup's alpha; ProtoPool's 0.5), 0 for none")
        self._check_defences()
        self._check_cache()

    def _check_cache(self) -> None:
        if not self.cached_augmentations:
            return
        if self.trainable_blocks < 0:
            raise ProtobenchError("cached_augmentations needs a frozen part to cache: set "
                                  "trainable_blocks to 0 (frozen backbone) or to the number of "
                                  "last blocks that learn")
        if self.adversarial or self.mixup:
            raise ProtobenchError("cached_augmentations trains on cached features, and "
                                  f"{'adversarial training' if self.adversarial else 'mixup'} "
                                  "changes the images themselves; drop one of the two")

    def _check_defences(self) -> None:
        from protobench.fractions import parse_fraction

        for name in ("adversarial_eps", "adversarial_alpha"):
            value = parse_fraction(getattr(self, name), name)
            if not 0.0 < value <= 1.0:
                raise ProtobenchError(f"{name}={getattr(self, name)!r} is invalid; allowed: a number "
                                      "in (0, 1] (pixel units, e.g. 8/255)")
            object.__setattr__(self, name, value)
        if self.adversarial:
            from protobench.training.adversarial import masked_preset
            if self.adversarial != "fgsm":
                try:
                    masked_preset(self.adversarial, self.adversarial_eps, self.adversarial_steps)
                except ProtobenchError as e:
                    raise ProtobenchError(f"adversarial={self.adversarial!r} is invalid; allowed: "
                                          f"'fgsm' or a masked attack preset ({e})") from None
        if self.jpeg_augment is not None:
            from protobench.data.jpeg_experiment import jpeg_augment_settings
            jpeg_augment_settings(self.jpeg_augment)
        if self.noise_augment is not None:
            from protobench.data.noise_augment import noise_augment_settings
            noise_augment_settings(self.noise_augment)


@dataclass(frozen=True)
class Recipe:
    name: str
    architecture: Architecture
    dataset: str = "synth"
    data_root: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False
    schedule: Schedule = Schedule()
    lr: LearningRates = LearningRates()
    loss: LossCoefficients = LossCoefficients()
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def _build(cls: type, table: dict[str, Any], where: str):
    check_keys(table, {f.name for f in fields(cls)}, where)
    table = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return cls(**table)
    except ProtobenchError as e:
        raise ProtobenchError(f"{where}: {e}") from None


def with_value(raw: dict[str, Any], key: str, text: str, where: str) -> dict[str, Any]:
    """A copy of the recipe ``raw`` with the dotted ``key`` (``train.seed``) set to ``text``
    read as a TOML value. Only a key of a table the recipe format knows; an unknown key of a
    known table is refused when the recipe is built."""
    import copy
    import tomllib

    *tables, leaf = key.split(".")
    known = {"model", "data", "train", "train.lr", "train.loss"}
    if not leaf or (tables and ".".join(tables) not in known) or (not tables and leaf != "description"):
        raise ProtobenchError(f"--set {key}: name a recipe value as TABLE.KEY, TABLE one of "
                              f"{', '.join(sorted(known))} (e.g. --set train.seed=1)")
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word: a string, as on the command line of run --set
    out = copy.deepcopy(raw)
    table = out
    for name in tables:
        table = table.setdefault(name, {})
        if not isinstance(table, dict):
            raise ProtobenchError(f"{where}: --set {key}: {name} is not a table")
    table[leaf] = value
    return out


def recipe_from_dict(name: str, raw: dict[str, Any], where: str = "recipe") -> Recipe:
    model = dict(raw.get("model", {}))
    pretrained = bool(model.pop("pretrained", False))
    data = dict(raw.get("data", {}))
    train = dict(raw.get("train", {}))
    lr = train.pop("lr", {})
    loss = train.pop("loss", {})
    arch = _build(Architecture, model, f"{where} [model]")
    loss = {**get_family(arch.family).loss_defaults, **loss}  # e.g. TesNet's orthogonality
    return Recipe(
        name=name, architecture=arch, dataset=data.pop("dataset", "synth"),
        data_root=data.pop("root", None), data_options=data, pretrained=pretrained,
        schedule=_build(Schedule, train, f"{where} [train]"),
        lr=_build(LearningRates, lr, f"{where} [train.lr]"),
        loss=_build(LossCoefficients, loss, f"{where} [train.loss]"),
        description=raw.get("description", ""), raw=raw)


def check_trainable(recipe: Recipe, where: str | None = None) -> None:
    """Refuse a schedule the trainer would not carry out as written: a push epoch outside
    0..epochs-1 would be skipped without a word, and with it the last-layer stage.

    Checked before training (``load_recipe``, ``trainer.train``), not when a checkpoint's
    stored recipe is read back to find its data.
    """
    sched = recipe.schedule
    where = where or recipe.name
    family = get_family(recipe.architecture.family)
    if family.procedure != "stages":  # its own procedure (PIP-Net: no push stage)
        if sched.cached_augmentations or sched.trainable_blocks >= 0:
            raise ProtobenchError(f"{where} [train]: trainable_blocks and cached_augmentations are "
                                  f"built for the ProtoPNet stages; a {family.name} model trains by "
                                  "its own procedure (PIP-Net freezes its backbone by freeze_epochs)")
        return
    if sched.warm_epochs > sched.epochs:
        raise ProtobenchError(f"{where} [train]: warm_epochs = {sched.warm_epochs} exceeds epochs = "
                              f"{sched.epochs}; the joint stage would never come")
    if not isinstance(sched.push_epochs, tuple) or any(
            isinstance(e, bool) or not isinstance(e, int) for e in sched.push_epochs):
        raise ProtobenchError(f"{where} [train]: push_epochs must be a list of integers (0-based "
                              f"epochs), got {sched.push_epochs!r}")
    outside = [e for e in sched.push_epochs if not 0 <= e < sched.epochs]
    if outside:
        written = "push_epochs" in recipe.raw.get("train", {})
        raise ProtobenchError(
            f"{where} [train]: push epoch(s) {outside} "
            f"{'' if written else '(the default push_epochs) '}would never come: with epochs = "
            f"{sched.epochs} the pushes must lie in 0..{sched.epochs - 1} (0-based); raise "
            f"epochs or move the push")


def load_recipe(name_or_path: str | Path, overrides: dict[str, str] | None = None) -> Recipe:
    """A recipe by name (``models/<name>.toml``) or by path, checked for training.

    ``overrides``: {"train.seed": "1", "data.distractors": "3", ...}, each value read as a
    TOML value (a bare word as a string), set into the recipe before it is checked; the
    checkpoint records the recipe as trained.
    """
    path, raw = read_preset(MODELS_DIR, name_or_path, "model recipe")
    for key, text in (overrides or {}).items():
        raw = with_value(raw, key, text, str(path))
    recipe = recipe_from_dict(path.stem, raw, str(path))
    check_trainable(recipe, str(path))
    return recipe
