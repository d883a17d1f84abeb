"""PIP-Net's training (Nauta et al. 2023; M-Nauta/PIPNet ``pipnet/train.py``, ``main.py``).

Every batch is seen as two views of the same images (same geometry, other
colours, so that patch i of one view is patch i of the other), and the loss
has three terms:

    align   -log <presence of patch i in view 1, same in view 2 (detached)>,
            mean over patches, both ways: a patch keeps its prototype
    tanh    -mean_p log(tanh(sum over the batch of p's pooled presence)):
            every prototype is present somewhere in the batch
    class   cross-entropy of log(1 + out ** 2)

Stages, as the original runs them:

    prototypes  ``prototype_epochs`` epochs of align (weight rising as
                epoch / prototype_epochs) + 5 tanh; the classifier and the
                backbone's early stages frozen
    finetune    the first ``finetune_epochs`` epochs: the classifier alone, class loss
    joint       5 align + 2 tanh + 2 class; after every step the classifier's
                weights lose 1e-3 and are clipped at 0 (sparsity); the backbone's
                early stages stay frozen until epoch ``freeze_epochs``

Then its prototype *sources*: the most present training patch of every
prototype with a positive weight; prototypes never present above 0.1 on the
training images lose their weights, as the original's last step does.

The views here are colour-only jitter (brightness, contrast, saturation and a
per-channel gain), standing in for the original's TrivialAugment without
shape operations. Which stages are early follows the original's parameter
groups (``early_backbone_parameters``); where the original freezes a
ResNet-50's stem and first stage for good, to fit one GPU, they train here
after ``freeze_epochs`` like the rest of its early group. The rates are the
original's: ``lr.features`` is its lr_net (the early stages),
``lr.add_on_layers`` its lr_block (the later stages; an add-on convolution
at 10 x lr_block), ``lr.classifier`` its lr.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from protobench.data.augment import draw_augmentation
from protobench.model.backbones import DenseNetFeatures, ResNetFeatures
from protobench.model.families.pipnet.network import INFERENCE_THRESHOLD, PIPNetwork
from protobench.errors import ProtobenchError
from protobench.model.classifier import PrototypeClassifier
from protobench.training.push import NearestPatches, PushRecord, latent_batches
from protobench.training.recipe import Recipe
from protobench.training.stats import EpochStats

EPS = 1e-8


def colour_views(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(2B, 3, H, W): two colour-jittered views of ``images`` (B, 3, H, W) in [0, 1]."""
    views = []
    for _ in range(2):
        b = len(images)
        shape = (b, 1, 1, 1)

        def draw(low: float, high: float, size=shape) -> torch.Tensor:
            return (low + (high - low) * torch.rand(size, generator=generator)).to(images.device)

        x = images * draw(0.7, 1.3)                                        # brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = mean + (x - mean) * draw(0.7, 1.3)                             # contrast
        grey = x.mean(dim=1, keepdim=True)
        x = grey + (x - grey) * draw(0.6, 1.4)                             # saturation
        x = x * draw(0.9, 1.1, (b, 3, 1, 1))                               # colour balance
        views.append(x.clamp(0, 1))
    return torch.cat(views)


def align_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """-mean log <a_i, b_i> over rows (patches); ``b`` is the detached target."""
    return -torch.log(torch.einsum("nc,nc->n", a, b) + 1e-12).mean()


def pipnet_loss(presence: torch.Tensor, pooled: torch.Tensor, logits: torch.Tensor,
                labels: torch.Tensor, align: float, tanh: float, classify: float
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """PIP-Net's loss on a batch of two views (first half, second half).

    presence (2B, P, h, w), pooled (2B, P), logits (2B, C) = log(1 + out ** m),
    labels (B,).
    """
    pf1, pf2 = presence.chunk(2)
    p1, p2 = pooled.chunk(2)
    patches1 = pf1.flatten(2).permute(0, 2, 1).flatten(end_dim=1)  # (B * h * w, P)
    patches2 = pf2.flatten(2).permute(0, 2, 1).flatten(end_dim=1)
    a = (align_loss(patches1, patches2.detach()) + align_loss(patches2, patches1.detach())) / 2
    t = -(torch.log(torch.tanh(p1.sum(dim=0)) + EPS).mean()
          + torch.log(torch.tanh(p2.sum(dim=0)) + EPS).mean()) / 2
    c = F.cross_entropy(logits, torch.cat([labels, labels]))
    loss = align * a + tanh * t + classify * c
    return loss, {"align": a.item(), "tanh": t.item(), "ce": c.item()}


def early_backbone_parameters(features: nn.Module) -> list[nn.Parameter] | None:
    """The backbone parameters that PIP-Net keeps frozen through its prototype stage and
    its first ``freeze_epochs`` epochs (the original's ``params_backbone``); the others
    (its ``params_to_freeze`` and ``params_to_train``) train from the start.

    Grouped as in the original: a ResNet trains its layer3 and layer4 from the start;
    a ConvNeXt, its CUB backbone, its last stage, and so do the stacks of convolution
    stages between max pools (the small CNN, VGG) and a DenseNet here. None for a
    backbone of unknown layout (a plug-in): it trains whole from the start.
    """
    if isinstance(features, ResNetFeatures):
        late: tuple[str, ...] = ("layer3.", "layer4.")
    elif isinstance(features, DenseNetFeatures):
        late = ("features.denseblock4.", "features.norm5.")
    elif isinstance(getattr(features, "features", None), nn.Sequential):  # small CNN, VGG
        layers = features.features
        pools = [i for i, m in enumerate(layers) if isinstance(m, nn.MaxPool2d)]
        start = pools[-2] + 1 if len(pools) >= 2 else 0
        late = tuple(f"features.{i}." for i in range(start, len(layers)))
    else:
        return None
    return [p for name, p in features.named_parameters() if not name.startswith(late)]


def _set_trainable(net: PIPNetwork, stage: str, frozen: list[nn.Parameter] = ()) -> None:
    """prototypes: backbone and add-on; finetune: the classifier; joint: everything;
    ``frozen`` (the early backbone stages) stay fixed in any stage."""
    for name, p in net.named_parameters():
        if name.endswith("normalization_multiplier"):
            p.requires_grad_(False)  # fixed at 2, as in the original
            continue
        head = name.startswith("classification")
        p.requires_grad_(stage == "joint" or (stage == "finetune") == head)
    for p in frozen:
        p.requires_grad_(False)


def train_pipnet_stages(model: PrototypeClassifier, recipe: Recipe, loader: DataLoader, push_set: Dataset,
                        evaluate: Callable[[], float], progress: bool = True,
                        log: Callable[[str], None] = print):
    """Run PIP-Net's stages on ``model`` (a pixel-space PIP-Net); return
    (history, push records, test accuracy). ``evaluate`` gives the test accuracy."""
    net: PIPNetwork = model.net
    sched, lr = recipe.schedule, recipe.lr
    if sched.adversarial or sched.mixup:
        raise ProtobenchError("adversarial training and mixup are not built for PIP-Net; train "
                              "it without `adversarial` and `mixup` (JPEG augmentation works)")
    generator = torch.Generator().manual_seed(sched.seed + 7)
    early = early_backbone_parameters(net.features)
    if early is None:
        log(f"PIP-Net: no known stages in backbone {net.features!r}; it trains whole from the start")
        early = []
    frozen_ids = {id(p) for p in early}
    late = [p for p in net.features.parameters() if id(p) not in frozen_ids]
    # the original's rates (get_optimizer_nn): lr_net (lr.features) for the early stages,
    # lr_block (lr.add_on_layers) for the later ones and 10 x lr_block for an add-on convolution
    def groups() -> list[dict]:  # new dicts each time: optimisers and schedulers write into them
        return [g for g in ({"params": early, "lr": lr.features},
                            {"params": late, "lr": lr.add_on_layers},
                            {"params": list(net.add_on_layers.parameters()), "lr": 10 * lr.add_on_layers})
                if g["params"]]
    history: list[EpochStats] = []

    def run(stage: str, epoch: int, weights: tuple[float, float, float], optimizers, schedulers,
            sparsify: bool, draw: int, freeze_early: bool) -> EpochStats:
        draw_augmentation(loader.dataset, draw)  # every epoch of every stage augments anew
        _set_trainable(net, stage, early if freeze_early else ())
        net.train()
        correct = n = 0
        sums = {"loss": 0.0, "ce": 0.0, "align": 0.0, "tanh": 0.0}
        start = time.perf_counter()
        for images, labels in tqdm(loader, desc=f"{stage:>10} {epoch:3d}", leave=False,
                                   disable=not progress):
            images, labels = images.to(model.device), labels.to(model.device)
            presence = net.presence_maps(model.normalize(colour_views(images, generator)))
            pooled = presence.flatten(2).amax(dim=2)
            logits = net.classify(pooled)
            loss, terms = pipnet_loss(presence, pooled, logits, labels, *weights)
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in optimizers:
                opt.step()
            for s in schedulers:
                s.step()
            if sparsify:
                with torch.no_grad():
                    net.classification.weight.copy_((net.classification.weight - 1e-3).clamp(min=0))
                    if net.classification.bias is not None:
                        net.classification.bias.clamp_(min=0)
            b = 2 * len(labels)
            n += b
            correct += (logits.argmax(1) == torch.cat([labels, labels])).sum().item()
            sums["loss"] += loss.item() * b
            for k, v in terms.items():
                sums[k] += v * b
        return EpochStats(stage, epoch, correct / max(n, 1), sums["loss"] / max(n, 1),
                          sums["ce"] / max(n, 1), 0.0, 0.0, 0.0, time.perf_counter() - start,
                          align=sums["align"] / max(n, 1), tanh=sums["tanh"] / max(n, 1))

    steps = max(len(loader), 1)
    if sched.prototype_epochs:  # the prototypes learn before any class is seen
        opt = torch.optim.Adam(groups())
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * sched.prototype_epochs,
                                                            eta_min=lr.add_on_layers / 100)
        for epoch in range(sched.prototype_epochs):
            history.append(run("prototypes", epoch, ((epoch + 1) / sched.prototype_epochs, 5.0, 0.0),
                               [opt], [cosine], sparsify=False, draw=epoch, freeze_early=True))
    net_opt = torch.optim.Adam(groups())  # anew, as the original's second phase
    head_params = [p for name, p in net.classification.named_parameters()
                   if not name.endswith("normalization_multiplier")]
    head_opt = torch.optim.Adam(head_params, lr=lr.classifier)
    net_cosine = torch.optim.lr_scheduler.CosineAnnealingLR(net_opt, T_max=steps * sched.epochs,
                                                            eta_min=lr.features / 100)
    head_restarts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        head_opt, T_0=5 * steps if sched.epochs <= 30 else 10 * steps, eta_min=1e-3)
    test = float("nan")
    for epoch in range(sched.epochs):
        draw = sched.prototype_epochs + epoch  # after the prototype stage's draws
        if epoch < sched.finetune_epochs:
            stats = run("finetune", epoch, (0.0, 0.0, 2.0), [head_opt], [head_restarts], sparsify=True,
                        draw=draw, freeze_early=True)
        else:
            stats = run("joint", epoch, (5.0, 2.0, 2.0), [net_opt, head_opt], [net_cosine, head_restarts],
                        sparsify=True, draw=draw, freeze_early=epoch < sched.freeze_epochs)
        history.append(stats)
        if progress or epoch == sched.epochs - 1:
            test = evaluate()
            log(f"pipnet epoch {epoch} ({stats.stage}): train accuracy {stats.accuracy:.3f}, "
                f"test accuracy {test:.3f}")
    records = prototype_sources(model, push_set, sched.push_batch_size)
    unused = _never_present(model, push_set, sched.push_batch_size)
    if unused.any():
        with torch.no_grad():
            net.classification.weight[:, unused] = 0
        test = evaluate()
        log(f"{int(unused.sum())} prototypes never present above {INFERENCE_THRESHOLD} in the "
            f"training images lost their weights; test accuracy {test:.3f}")
        records = [r for r in records if not unused[r.prototype]]
    _set_trainable(net, "joint")
    return history, records, test


@torch.no_grad()
def prototype_sources(model: PrototypeClassifier, push_set: Dataset, batch_size: int = 100) -> list[PushRecord]:
    """The most present training patch of every prototype with a positive class weight
    (PIP-Net's top-1 visualisation), recorded as push records; nothing is projected."""
    net = model.net
    net.eval()
    search = NearestPatches(model, class_specific=False)
    for presence, dissimilarity, labels in latent_batches(model, push_set, batch_size):
        search.update(None, dissimilarity, labels)
    used = net.prototype_weights().amax(dim=0) > 0
    return [r for r in search.records() if used[r.prototype]]


@torch.no_grad()
def _never_present(model: PrototypeClassifier, push_set: Dataset, batch_size: int) -> torch.Tensor:
    """(P,) bool: prototypes whose pooled presence never exceeds the inference threshold."""
    net = model.net
    net.eval()
    best = torch.zeros(net.num_prototypes, device=model.device)
    for presence, _, _ in latent_batches(model, push_set, batch_size):
        best = torch.maximum(best, presence.flatten(2).amax(dim=2).amax(dim=0))
    return best <= INFERENCE_THRESHOLD
