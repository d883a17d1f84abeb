"""ProtoPNet's training stages (Chen et al. 2019, section 2.2).

    pretrain    (optional) the backbone alone, standing in for the ImageNet
                initialisation ProtoPNet starts from, which protobench never
                downloads: on the task's images ("image", "cells") or on a
                pretext task of another distribution ("pretext", pretext.py)
    warm        add-on layers and prototypes, backbone frozen
    joint       backbone, add-on layers and prototypes (StepLR)
    push        prototypes projected onto training patches (push.py)
    last layer  only the last layer, a convex problem once the rest is fixed

Epochs before ``warm_epochs`` are warm, the others joint; after every epoch
in ``push_epochs`` come a push and ``last_layer_epochs`` of last-layer
training, as in the original ``main.py``. Given a ``resume`` path, the
training keeps its state there and a stopped one goes on from it
(resume.py).
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from protobench.data.augment import draw_augmentation
from protobench.errors import ProtobenchError
from protobench.evaluation.accuracy import accuracy, correct_predictions  # noqa: F401 (re-exported)
from protobench.model.classifier import PrototypeClassifier
from protobench.model.families import get_family
from protobench.source import code_identity
from protobench.training.losses import LossCoefficients, training_loss
from protobench.training.mixup import Mixup, mixed_loss
from protobench.training.pretext import NUM_COLOURS, NUM_KINDS, PretextScenes
from protobench.training.adversarial import Adversary, make_adversary
from protobench.training.feature_cache import FeatureCache, freeze_prefix
from protobench.training.pipnet import train_pipnet_stages
from protobench.training.push import PushRecord, push_prototypes
from protobench.training.recipe import PRETRAIN_HEADS, LearningRates, Recipe, check_trainable
from protobench.training.resume import (TrainingState, global_rng_state, load_state, recipe_key,
                                        restore_global_rng, save_state)
from protobench.training.stats import EpochStats


# The training procedures of the families that do not train by ProtoPNet's stages (a
# family's ``procedure``), each (model, recipe, loader, push_set, test accuracy, progress,
# log) -> (history, push records, test accuracy).
PROCEDURES: dict[str, Callable] = {"pipnet": train_pipnet_stages}


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------- stages
def set_stage(model: PrototypeClassifier, stage: str, trainable_blocks: int = -1) -> None:
    """Which parameters learn in ``stage`` ('warm', 'joint' or 'last'), as the family says;
    in 'joint', of the backbone only its last ``trainable_blocks`` blocks (-1: all of it)."""
    net, trainable = model.net, model.rules.trainable(stage)
    for name, p in net.named_parameters():
        if name == "ones":
            continue
        p.requires_grad_(name.split(".")[0] in trainable)
    if stage == "joint":
        freeze_prefix(net.features, trainable_blocks)


def make_optimizers(model: PrototypeClassifier, lr: LearningRates) -> dict[str, torch.optim.Optimizer]:
    """One Adam optimiser per stage, over the family's parameter groups ("last" only for a
    family with a last-layer stage)."""
    return {stage: torch.optim.Adam(groups)
            for stage, groups in model.rules.parameter_groups(model.net, lr).items()}


class _WithRelevance(Dataset):
    """(image, label, object mask as float (1, H, W)) from a data set with masks."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        image, label = self.dataset[i]
        return image, label, self.dataset.relevance_mask(i).float().unsqueeze(0)


def cell_targets(masks: torch.Tensor, labels: torch.Tensor, cells: tuple[int, int],
                 background: int) -> torch.Tensor:
    """Per-cell labels (B, h, w): the image's class where the object covers at
    least half of the cell, else ``background``."""
    cover = torch.nn.functional.adaptive_avg_pool2d(masks, cells)[:, 0]
    return torch.where(cover >= 0.5, labels.view(-1, 1, 1), torch.full_like(labels.view(-1, 1, 1), background))


def last_layer_draw(sched, push_index: int, epoch: int) -> int:
    """The augmentation draw of last-layer epoch ``epoch`` after push number ``push_index``:
    after the warm and joint epochs' draws 0 .. epochs - 1, never one of theirs."""
    return sched.epochs + push_index * sched.last_layer_epochs + epoch


def pretrain_backbone(model: PrototypeClassifier, loader: DataLoader, epochs: int, lr: float, *,
                      head: str = "image", progress: bool = True) -> list["EpochStats"]:
    """Train ``features`` with a temporary head and cross-entropy; the head is thrown away.

    ProtoPNet starts from an ImageNet-trained backbone; without downloads, a
    backbone trained on the task's own training images plays that part.

    head "image"  global average pooling + linear: a plain image classifier of
                  the loader's classes (the task's, or "other-classes").
    head "cells"  a 1x1 convolution classifies every feature cell: the image's
                  class on cells the object covers (at least half), an extra
                  "background" class elsewhere (needs object masks). A deep
                  backbone whose every cell sees the whole image learns this
                  way that a cell's features describe what lies under it, as
                  ImageNet features do, instead of the whole image.

    The accuracy in the returned stats is per image ("image") or per cell ("cells").
    """
    if head not in PRETRAIN_HEADS:
        raise ProtobenchError(f"pretrain_head must be one of {', '.join(PRETRAIN_HEADS)}, got {head!r}")
    if head == "pretext":
        raise ProtobenchError("pretrain_head 'pretext' trains on scenes of its own, not on a loader: "
                              "use pretrain_pretext")
    if head == "other-classes":  # a plain image classifier, on a loader of other classes
        head = "image"
    dataset = loader.dataset
    if len(dataset) == 0:
        raise ProtobenchError("cannot pre-train the backbone on an empty data set")
    if head == "cells":
        if not hasattr(dataset, "relevance_mask") or dataset.relevance_mask(0) is None:
            raise ProtobenchError("pretrain_head = 'cells' needs object masks, and this "
                                  f"data set has none: {dataset!r}")
        loader = DataLoader(_WithRelevance(dataset), batch_size=loader.batch_size, shuffle=True,
                            generator=loader.generator)
    features = model.net.features
    num_classes = len(dataset.classes) if hasattr(dataset, "classes") else model.net.num_classes
    if head == "image":
        classifier = torch.nn.Linear(features.out_channels, num_classes)
    else:
        classifier = torch.nn.Conv2d(features.out_channels, num_classes + 1, kernel_size=1)
    classifier = classifier.to(model.device)
    optimizer = torch.optim.Adam([*features.parameters(), *classifier.parameters()], lr=lr)
    history = []
    for epoch in range(epochs):
        draw_augmentation(dataset, 100_000 + epoch)  # augmentations of their own
        features.train()
        correct = n = 0
        total = 0.0
        start = time.perf_counter()
        for batch in tqdm(loader, desc=f"pretrain {epoch:3d}", leave=False, disable=not progress):
            images, labels = batch[0].to(model.device), batch[1].to(model.device)
            z = features(model.normalize(images))
            if head == "image":
                logits, targets = classifier(z.mean(dim=(2, 3))), labels
            else:
                logits = classifier(z)
                targets = cell_targets(batch[2].to(model.device), labels, z.shape[-2:], num_classes)
                if epoch == 0 and n == 0 and not (targets == num_classes).any():
                    raise ProtobenchError(
                        "pretrain_head = 'cells' found no background cell in the first batch: the "
                        "object masks cover the whole image (cropped images?); use pretrain_head = 'image'")
            loss = torch.nn.functional.cross_entropy(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            correct += (logits.argmax(1) == targets).sum().item()
            n += targets.numel()
            total += loss.item() * targets.numel()
        history.append(EpochStats("pretrain", epoch, correct / n, total / n, total / n, 0.0, 0.0, 0.0,
                                  time.perf_counter() - start))
    return history


def pretrain_pretext(model: PrototypeClassifier, epochs: int, lr: float, *, images: int, batch_size: int,
                     seed: int, progress: bool = True) -> list["EpochStats"]:
    """Train ``features`` on the pretext task of :mod:`protobench.training.pretext`.

    Two temporary 1x1-convolution heads label every feature cell of random
    shape scenes, one with the (shape, fill) under it and one with its hue
    (cross-entropy, summed); the heads are thrown away. The scenes are
    generated at the model's image size from ``seed``; no image, label or
    mask of the benchmark's data set is read. The accuracy in the returned
    stats is the per-cell accuracy of the (shape, fill) labels.
    """
    if epochs and images < 1:
        raise ProtobenchError(f"pretrain_images={images!r} is invalid; allowed: an integer >= 1")
    n_cells = int(model.net.proto_layer_rf_info[0])
    scenes = PretextScenes(images, model.img_size, (n_cells, n_cells), seed=seed)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(scenes, batch_size=batch_size, shuffle=True, generator=generator)
    features = model.net.features
    kind_head = torch.nn.Conv2d(features.out_channels, NUM_KINDS, 1).to(model.device)
    colour_head = torch.nn.Conv2d(features.out_channels, NUM_COLOURS, 1).to(model.device)
    optimizer = torch.optim.Adam([*features.parameters(), *kind_head.parameters(),
                                  *colour_head.parameters()], lr=lr)
    history = []
    for epoch in range(epochs):
        features.train()
        correct = n = 0
        total = 0.0
        start = time.perf_counter()
        for x, kinds, colours in tqdm(loader, desc=f"pretext {epoch:3d}", leave=False, disable=not progress):
            x, kinds, colours = x.to(model.device), kinds.to(model.device), colours.to(model.device)
            z = features(model.normalize(x))
            if z.shape[-2:] != kinds.shape[-2:]:
                raise ProtobenchError(f"pretext labels are {tuple(kinds.shape[-2:])} cells, the backbone "
                                      f"gives {tuple(z.shape[-2:])}")
            kind_logits = kind_head(z)
            loss = (torch.nn.functional.cross_entropy(kind_logits, kinds)
                    + torch.nn.functional.cross_entropy(colour_head(z), colours))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            correct += (kind_logits.argmax(1) == kinds).sum().item()
            n += kinds.numel()
            total += loss.item() * kinds.numel()
        history.append(EpochStats("pretext", epoch, correct / n, total / n, total / n, 0.0, 0.0, 0.0,
                                  time.perf_counter() - start))
    return history




def run_epoch(model: PrototypeClassifier, loader: DataLoader, optimizer: torch.optim.Optimizer,
              coefs: LossCoefficients, stage: str, epoch: int, progress: bool = True,
              adversary: Adversary | None = None, mixup: Mixup | None = None,
              cached: bool = False, frozen_statistics: bool = False) -> EpochStats:
    """One training pass over ``loader`` (on attacked images, with an ``adversary``; on
    mixed images, with ``mixup``). ``cached``: the loader gives cached backbone features,
    not images (feature_cache.py); ``frozen_statistics``: the backbone's BatchNorm layers
    keep their running statistics (eval mode)."""
    net, rules = model.net, model.rules
    net.train()
    if frozen_statistics:
        net.features.eval()
    sums = {"loss": 0.0, "ce": 0.0, "clst": 0.0, "sep": 0.0, "l1": 0.0}
    correct = n = 0
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"{stage:>5} {epoch:3d}", leave=False, disable=not progress)
    for images, labels in bar:
        images, labels = images.to(model.device), labels.to(model.device)
        if adversary is not None:
            images = adversary(model, images, labels)
        mixed = mixup(images, labels) if mixup is not None else None
        inputs = images if mixed is None else mixed.images
        logits, min_distances = net(inputs if cached else model.normalize(inputs))
        loss, terms = training_loss(model, logits, min_distances, labels, coefs)
        if mixed is not None:
            loss, terms = mixed_loss(loss, terms, logits, labels, mixed, coefs.cross_entropy)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        rules.after_step(net)  # TesNet: unit basis vectors again
        b = labels.numel()
        n += b
        correct += (logits.argmax(1) == labels).sum().item()
        sums["loss"] += loss.item() * b
        for k, v in terms.items():
            sums[k] += v * b
        bar.set_postfix(acc=f"{correct / n:.3f}", ce=f"{terms['ce']:.3f}",
                        clst=f"{terms['clst']:.3f}", sep=f"{terms['sep']:.3f}")
    return EpochStats(stage, epoch, correct / max(n, 1), **{k: v / max(n, 1) for k, v in sums.items()},
                      seconds=time.perf_counter() - start)


@dataclass
class TrainingResult:
    model: PrototypeClassifier
    history: list[EpochStats] = field(default_factory=list)
    push_records: list[PushRecord] = field(default_factory=list)
    test_accuracy: float = float("nan")
    seconds: float = 0.0


def stopped_training(recipe: Recipe, resume: Path | None,
                     device: str | torch.device = "cpu") -> TrainingState | None:
    """The training of ``recipe`` stopped in ``resume``, if there is one; refused (resume.py's
    ``load_state``) when another recipe or other code wrote it. A family whose training
    keeps no state (PIP-Net): None."""
    if resume is None or not get_family(recipe.architecture.family).resumable:
        return None
    return load_state(resume, recipe_key(recipe.raw), code_identity(torch.device(device)))


def train(recipe: Recipe, train_set: Dataset, push_set: Dataset, test_set: Dataset,
          classes: list[str], device: str | torch.device = "cpu", progress: bool = True,
          log: Callable[[str], None] = print, pretrain_set: Dataset | None = None,
          resume: Path | None = None) -> TrainingResult:
    """Train a model from ``recipe``: ProtoPNet's and ProtoPool's warm, joint, push and
    last-layer stages, or PIP-Net's own (:mod:`protobench.training.pipnet`).

    ``pretrain_set``: the backbone's pre-training images when the recipe's
    ``pretrain_head`` is "other-classes" (``recipe_data`` makes it).
    ``resume``: the file that keeps the training state (resume.py): a
    training stopped earlier goes on from it; None keeps no state.
    """
    check_trainable(recipe)
    sched = recipe.schedule
    generator = seed_everything(sched.seed)
    arch = dataclasses.replace(recipe.architecture, num_classes=len(classes))
    model = PrototypeClassifier.build(arch, classes, pretrained=recipe.pretrained, name=recipe.name,
                            recipe=recipe.raw).to(device)
    net = model.net
    loader = DataLoader(train_set, batch_size=sched.batch_size, shuffle=True, generator=generator)
    result = TrainingResult(model)
    start = time.perf_counter()
    key, code = recipe_key(recipe.raw), code_identity(torch.device(device))
    stopped = stopped_training(recipe, resume, device)
    if stopped is not None:
        log(f"resuming {recipe.name} at epoch {stopped.next_epoch} from {resume}")
        net.load_state_dict(stopped.model)
        result.history, result.push_records = stopped.epoch_stats(), stopped.records()
        start -= stopped.seconds
    elif sched.pretrain_epochs and sched.pretrain_head == "pretext":
        result.history += pretrain_pretext(model, sched.pretrain_epochs, recipe.lr.pretrain,
                                           images=sched.pretrain_images, batch_size=sched.batch_size,
                                           seed=sched.seed, progress=progress)
    elif sched.pretrain_epochs and sched.pretrain_head == "other-classes":
        if pretrain_set is None:
            raise ProtobenchError("pretrain_head = 'other-classes' needs its pre-training set "
                                  "(pretrain_set, made by protobench.training.recipe_data)")
        pretrain_loader = DataLoader(pretrain_set, batch_size=sched.batch_size, shuffle=True,
                                     generator=torch.Generator().manual_seed(sched.seed))
        result.history += pretrain_backbone(model, pretrain_loader, sched.pretrain_epochs,
                                            recipe.lr.pretrain, head="image", progress=progress)
    elif sched.pretrain_epochs:
        result.history += pretrain_backbone(model, loader, sched.pretrain_epochs, recipe.lr.pretrain,
                                            head=sched.pretrain_head, progress=progress)
    rules = model.rules
    if rules.procedure != "stages":  # the family trains by a procedure of its own
        history, records, test = PROCEDURES[rules.procedure](
            model, recipe, loader, push_set, lambda: accuracy(model, test_set, sched.test_batch_size),
            progress, log)
        result.history += history
        result.push_records = records
        return _finish(result, model, test, start)
    optimizers = make_optimizers(model, recipe.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizers["joint"], step_size=recipe.lr.joint_step_size,
                                                gamma=recipe.lr.joint_gamma)
    # a defence attacks each batch of the ProtoPNet stages (warm, joint, last layer)
    adversary = make_adversary(sched.adversarial, sched.adversarial_eps, sched.adversarial_alpha,
                               sched.adversarial_steps, sched.seed)
    mixup = Mixup(sched.mixup, sched.seed + 11) if sched.mixup else None  # every stage, as ProtoPool
    generators = {"batches": generator, **({"adversary": adversary.generator} if adversary else {}),
                  **({"mixup": mixup} if mixup else {})}  # each with get_state / set_state
    test = None  # test accuracy of the model as last evaluated
    first = 0
    if stopped is not None:
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(stopped.optimizers[name])
        scheduler.load_state_dict(stopped.scheduler)
        for name, g in generators.items():
            g.set_state(stopped.generators[name])
        restore_global_rng(stopped.global_rng)
        test, first = stopped.test, stopped.next_epoch

    def keep_state(next_epoch: int) -> None:
        if resume is not None:
            save_state(resume, TrainingState(
                key, code, next_epoch, net.state_dict(), {k: o.state_dict() for k, o in optimizers.items()},
                scheduler.state_dict(), {k: g.get_state() for k, g in generators.items()},
                global_rng_state(), [dataclasses.asdict(h) for h in result.history],
                [r.to_dict() for r in result.push_records], test, time.perf_counter() - start))

    if stopped is None:
        keep_state(0)  # after the pre-training
    # the frozen part of the backbone computed once (feature_cache.py), or every pass
    cache = (FeatureCache(model, sched.trainable_blocks, sched.cached_augmentations, train_set,
                          test_set, sched.batch_size, sched.test_batch_size, progress)
             if sched.cached_augmentations else None)
    frozen_statistics = sched.trainable_blocks >= 0

    def test_accuracy() -> float:
        return cache.test_accuracy() if cache else accuracy(model, test_set, sched.test_batch_size)

    def train_pass(stage: str, epoch: int, draw: int, optimizer: torch.optim.Optimizer) -> EpochStats:
        """One pass of ``stage`` on augmentation draw ``draw`` of the training images."""
        if cache is None:
            draw_augmentation(train_set, draw)
            return run_epoch(model, loader, optimizer, recipe.loss, stage, epoch, progress, adversary,
                             mixup, frozen_statistics=frozen_statistics)
        with cache.stage(stage, draw, generator) as cached_loader:
            return run_epoch(model, cached_loader, optimizer, recipe.loss, stage, epoch, progress,
                             cached=True, frozen_statistics=True)

    epochs = tqdm(range(first, sched.epochs), desc=f"train {recipe.name}", disable=not progress,
                  initial=first, total=sched.epochs)
    for epoch in epochs:
        stage = "warm" if epoch < sched.warm_epochs else "joint"
        set_stage(model, stage, sched.trainable_blocks)
        rules.before_epoch(net, epoch, sched)  # ProtoPool: the Gumbel-softmax scale
        stats = train_pass(stage, epoch, epoch, optimizers[stage])
        if stage == "joint":
            scheduler.step()
        result.history.append(stats)
        if progress or epoch in sched.push_epochs or epoch == sched.epochs - 1:  # shown or logged
            test = test_accuracy()
            epochs.set_postfix(stage=stage, train_acc=f"{stats.accuracy:.3f}", test_acc=f"{test:.3f}")
        if epoch in sched.push_epochs:
            result.push_records = push_prototypes(model, push_set, sched.push_batch_size,
                                                  sched.class_specific_push)
            pushed = test_accuracy()
            set_stage(model, "last")
            rules.before_last_layer(net)  # ProtoPool: slots (nearly) one-hot
            for i in range(sched.last_layer_epochs if "last" in optimizers else 0):
                draw = last_layer_draw(sched, sched.push_epochs.index(epoch), i)
                result.history.append(train_pass("last", i, draw, optimizers["last"]))
                rules.after_last_layer_epoch(optimizers["last"], i)  # ProtoPool: rate x0.95 / 5
            before, test = test, test_accuracy()
            log(f"epoch {epoch}: test accuracy {before:.3f} before push, {pushed:.3f} after push, "
                f"{test:.3f} after last-layer training")
        if epoch < sched.epochs - 1:
            keep_state(epoch + 1)
    set_stage(model, "joint")
    # the model as last evaluated, after the last epoch (and its push)
    return _finish(result, model, test if test is not None else test_accuracy(), start)


def _finish(result: TrainingResult, model: PrototypeClassifier, test_accuracy: float, start: float) -> TrainingResult:
    """The trained model's records and history, in eval mode."""
    model.eval()
    result.test_accuracy = test_accuracy
    result.seconds = time.perf_counter() - start
    model.meta.push_records = [r.to_dict() for r in result.push_records]
    model.meta.history = {
        "test_accuracy": result.test_accuracy, "train_seconds": round(result.seconds, 1),
        "epochs": [dataclasses.asdict(s) for s in result.history],
    }
    return result
