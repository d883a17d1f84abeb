"""Two of a model's own figures that decide whether it is a target worth attacking.

noise stability    The benchmark's noise control (attacks/noise.toml: uniform
                   noise in [-eps, eps] inside the top-1 prototype's
                   high-activation box) applied to the model's first test
                   images: the share of pairs whose similarity peak stays in
                   R (the clean high-activation cells) and whose prediction
                   is kept, with Wilson intervals. A model that this noise
                   already moves or flips is no target: an attack on it
                   proves nothing that the noise does not.
latent saturation  mean |z - 0.5| over the latent cells z = add_on(features(x))
                   of those images, for a network whose add-on layers end in
                   a sigmoid (0.5: every dimension at 0 or 1). A saturated
                   latent shuts the background out: its cells sit on one far
                   code that no small patch change moves (models/README.md).

Both are computed on the first ``count`` images of a split, as the realism
report is, never chosen by an attack's result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from protobench.metrics.aggregate import wilson_interval

NOISE_EPS = 8 / 255
NOISE_IMAGES = 64


@dataclass(frozen=True)
class NoiseStability:
    images: int
    eps: float
    peak_stays_in_r: float
    peak_stays_in_r_ci: tuple[float, float]
    prediction_kept: float
    prediction_kept_ci: tuple[float, float]

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else round(v, 4) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def _first(data, count: int):
    idx = range(min(count, len(data)))
    images = torch.stack([data[i][0] for i in idx])
    labels = torch.tensor([int(data[i][1]) for i in idx])
    masks = getattr(data, "relevance_mask", lambda i: None)
    return images, labels, [masks(i) for i in idx]


def noise_stability(model, data, count: int = NOISE_IMAGES, eps: float = NOISE_EPS,
                    seed: int = 0) -> NoiseStability:
    """The noise control of ``eps`` on the first ``count`` images of ``data``, top-1 prototype."""
    from protobench.api import attack

    images, labels, relevance = _first(data, count)
    report = attack(model, images.to(model.device), labels, "noise", relevance, seed=seed, eps=eps)
    stays = (~report.metrics.peak_moved.bool()).cpu()
    kept = report.metrics.pred_kept.bool().cpu()
    n = len(stays)
    return NoiseStability(n, eps, float(stays.float().mean()), wilson_interval(int(stays.sum()), n),
                          float(kept.float().mean()), wilson_interval(int(kept.sum()), n))


@torch.no_grad()
def latent_saturation(model, data, count: int = NOISE_IMAGES) -> float | None:
    """Mean |z - 0.5| of the latent cells of the first ``count`` images; None for a network
    without a sigmoid latent (PIP-Net's softmax presences)."""
    net = model.net
    layers = list(net.add_on_layers.children()) if hasattr(net, "add_on_layers") else []
    if not layers or not isinstance(layers[-1], torch.nn.Sigmoid) or not hasattr(net, "conv_features"):
        return None
    model.eval()
    images, _, _ = _first(data, count)
    z = net.conv_features(model.normalize(images.to(model.device)))
    return float((z - 0.5).abs().mean())
