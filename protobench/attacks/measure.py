"""Every per-pair metric (docs/metrics.md) for attacked images of a batch of pairs."""

from __future__ import annotations

import torch
import torch.nn as nn

from protobench.attacks.pairs import Pairs
from protobench.metrics import PairMetrics, pair_metrics
from protobench.model.protocol import class_relation


@torch.no_grad()
def measure(model: nn.Module, images: torch.Tensor, pairs: Pairs, x_adv: torch.Tensor,
            batch_size: int = 64) -> tuple[PairMetrics, torch.Tensor]:
    """Every per-pair metric of x_adv against the clean pairs, and S_j(x_adv) (N, h, w).

    model: a PrototypeModel; images: the batch the pairs were selected from;
    x_adv (N, 3, H, W), one attacked image per pair.
    """
    outputs = [model.explain(chunk) for chunk in x_adv.split(batch_size)]
    logits = torch.cat([o[0] for o in outputs])
    maps = torch.cat([o[2] for o in outputs])
    n = torch.arange(len(pairs), device=x_adv.device)
    sim_after = maps[n, pairs.prototype]
    metrics = pair_metrics(
        sim_before=pairs.sim_before, sim_after=sim_after, high_activation=pairs.high_activation,
        irrelevant=pairs.irrelevant, target=pairs.target, box_cells=pairs.box_cells,
        rank_before=pairs.rank_before,
        all_after=maps.flatten(2).amax(dim=2), prototype=pairs.prototype,
        prototype_class=class_relation(model, logits.shape[1]).to(x_adv.device), logits_before=pairs.logits_before,
        logits_after=logits, labels=pairs.label, x=images[pairs.image_index], x_adv=x_adv,
        mask=pairs.mask)
    return metrics, sim_after
