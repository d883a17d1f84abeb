"""Training on cached backbone features: a frozen trunk's work done once, not every epoch.

With ``trainable_blocks = K`` a recipe lets only the last K of the backbone's
blocks (``blocks_in_order()``) learn in the joint stage; the blocks before
them stay frozen, BatchNorm statistics included. What a frozen part computes
never changes, so with ``cached_augmentations = n`` it is computed once per
image, for n fixed augmented copies of the training images (copy c is the
augmentation draw c; epoch e trains on copy e mod n) and for the test images:

    warm, last layer   the whole backbone is frozen: cached latent features
                       (the tail applied once to the cached prefix, again after
                       every joint stage, since the tail has learnt)
    joint              the cached prefix goes through the learning tail
    test passes        cached prefix, then the tail and the head
    push               the whole network on the push images, as always

The copies are fixed because a cache cannot draw a new augmentation per
epoch; n copies give n of the draws the uncached training would see, and
with ``augment = false`` one copy is exactly the uncached training.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from protobench.data.augment import draw_augmentation
from protobench.errors import ProtobenchError


def backbone_blocks(features: nn.Module) -> list[nn.Module]:
    """The backbone's blocks in order (their composition is its forward pass)."""
    if not hasattr(features, "blocks_in_order"):
        raise ProtobenchError(f"backbone {features!r} does not list its blocks (blocks_in_order), so "
                              "trainable_blocks can only be 0 (frozen) or -1 (all) for it")
    return list(features.blocks_in_order())


def split_backbone(features: nn.Module, trainable_blocks: int) -> tuple[nn.Module, nn.Module]:
    """(frozen prefix, learning tail) of a backbone whose last ``trainable_blocks`` learn."""
    if trainable_blocks == 0:
        return features, nn.Identity()
    blocks = backbone_blocks(features)
    if not 0 < trainable_blocks <= len(blocks):
        raise ProtobenchError(f"trainable_blocks = {trainable_blocks}, but backbone {features!r} has "
                              f"{len(blocks)} blocks; allowed: -1 (all learn), 0 .. {len(blocks)}")
    return nn.Sequential(*blocks[:-trainable_blocks]), nn.Sequential(*blocks[-trainable_blocks:])


def freeze_prefix(features: nn.Module, trainable_blocks: int) -> None:
    """Stop the gradients of every backbone parameter outside the last ``trainable_blocks``."""
    if trainable_blocks >= 0:
        frozen, _ = split_backbone(features, trainable_blocks)
        for p in frozen.parameters():
            p.requires_grad_(False)


@contextmanager
def features_replaced(net: nn.Module, replacement: nn.Module) -> Iterator[None]:
    """Run the network with ``replacement`` in place of its backbone (on cached inputs)."""
    original = net.features
    net.features = replacement
    try:
        yield
    finally:
        net.features = original


@torch.no_grad()
def _apply(module: nn.Module, inputs: torch.Tensor, batch_size: int, device: torch.device,
           desc: str, progress: bool) -> torch.Tensor:
    module.eval()
    out = [module(inputs[i:i + batch_size].to(device))
           for i in tqdm(range(0, len(inputs), batch_size), desc=desc, leave=False, disable=not progress)]
    return torch.cat(out)


@torch.no_grad()
def _prefix_of(frozen: nn.Module, normalize, dataset: Dataset, batch_size: int, device: torch.device,
               desc: str, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    frozen.eval()
    features, labels = [], []
    for images, y in tqdm(DataLoader(dataset, batch_size=batch_size, shuffle=False), desc=desc,
                          leave=False, disable=not progress):
        features.append(frozen(normalize(images.to(device))))
        labels.append(torch.as_tensor(y))
    return torch.cat(features), torch.cat(labels).to(device)


class FeatureCache:
    """The frozen prefix's features of n augmented copies of the training images and of the
    test images, and the latent features of the whole frozen backbone derived from them."""

    def __init__(self, model, trainable_blocks: int, copies: int, train_set: Dataset,
                 test_set: Dataset, batch_size: int, eval_batch_size: int,
                 progress: bool = True) -> None:
        if copies < 1:
            raise ProtobenchError(f"cached_augmentations = {copies}; a cache needs at least 1 copy")
        self.net = model.net
        self.batch_size = batch_size            # training batches
        self.eval_batch_size = eval_batch_size  # computing the cache, test passes
        self.device = model.device
        self.progress = progress
        self.frozen, self.tail = split_backbone(self.net.features, trainable_blocks)
        self.copies: list[torch.Tensor] = []
        for c in range(copies):
            draw_augmentation(train_set, c)
            prefix, self.labels = _prefix_of(self.frozen, model.normalize, train_set, eval_batch_size,
                                             self.device, f"cache copy {c}", progress)
            self.copies.append(prefix)
        self.test, self.test_labels = _prefix_of(self.frozen, model.normalize, test_set, eval_batch_size,
                                                 self.device, "cache test", progress)
        self._latent: list[torch.Tensor] | None = None

    def copy_of(self, draw: int) -> int:
        return draw % len(self.copies)

    def joint_changed_the_tail(self) -> None:
        """Forget the latent features: the tail learnt (a joint epoch ran)."""
        self._latent = None

    def _latents(self) -> list[torch.Tensor]:
        if isinstance(self.tail, nn.Identity):  # a frozen backbone: the prefix is the latent
            return self.copies
        if self._latent is None:
            self._latent = [_apply(self.tail, prefix, self.eval_batch_size, self.device, "cache latent",
                                   self.progress) for prefix in self.copies]
        return self._latent

    @contextmanager
    def stage(self, stage: str, draw: int, generator: torch.Generator) -> Iterator[DataLoader]:
        """A shuffled loader of the cached inputs of ``stage`` for augmentation draw ``draw``,
        with the network's backbone replaced by what remains to compute on them."""
        if stage == "joint":
            inputs, remaining = self.copies[self.copy_of(draw)], self.tail
        else:  # warm, last: the whole backbone is frozen
            inputs, remaining = self._latents()[self.copy_of(draw)], nn.Identity()
        loader = DataLoader(TensorDataset(inputs, self.labels), batch_size=self.batch_size,
                            shuffle=True, generator=generator)
        with features_replaced(self.net, remaining):
            yield loader
        if stage == "joint":
            self.joint_changed_the_tail()

    @torch.no_grad()
    def test_accuracy(self) -> float:
        """Top-1 accuracy on the cached test images (the whole network in eval mode)."""
        self.net.eval()
        with features_replaced(self.net, self.tail):
            step = self.eval_batch_size
            correct = sum(int((self.net(self.test[i:i + step])[0].argmax(1)
                               == self.test_labels[i:i + step]).sum())
                          for i in range(0, len(self.test), step))
        return correct / max(len(self.test), 1)
