"""PIP-Net (Nauta et al., CVPR 2023), as in M-Nauta/PIPNet ``pipnet/pipnet.py``.

No prototype vectors and no distances: the backbone's channels *are* the
prototypes. A softmax over them at every latent patch gives each patch's
*presence* of every prototype in [0, 1] (they sum to 1 over prototypes);
global max pooling gives each prototype's presence in the image; a
non-negative linear layer (ReLU of its weights) scores the classes:

    presence (B, P, h, w) = softmax_P(features(x)),  pooled = max_hw presence
    out = pooled @ relu(W).T (+ bias),                logits = log(1 + out ** m)

with m the fixed ``normalization_multiplier`` (2); ``log1p(out ** m)`` is what
PIP-Net's training feeds its softmax, and has the same arg-max as ``out``.
In eval mode a pooled presence below 0.1 counts as absent (0), as the
original's inference does.

Similarity maps (what the attacks and metrics read): the presence maps,
the heat maps PIP-Net's own explanations show. The attacks' objectives
ascend their log-odds instead (``attack_maps``): the same peaks, but no
saturated gradient. protobench's "distance" for
PIP-Net is 1 - presence, so that push-like searches (its prototype sources:
the most present training patch of each prototype) and the max-pooling code
paths work unchanged; it is not a latent distance, and the realism report
leaves the distance ratio out for it.

``add_on_layers`` is the original's: the softmax alone when the prototypes
are the backbone's channels (its default, ``num_features = 0``), or a 1x1
convolution to ``num_prototypes`` channels and the softmax.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from protobench.errors import ProtobenchError

INFERENCE_THRESHOLD = 0.1  # pooled presence below this counts as absent at inference


class NonNegLinear(nn.Module):
    """A linear layer whose weights enter through a ReLU (PIP-Net's classifier)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.normalization_multiplier = nn.Parameter(torch.ones(1), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, torch.relu(self.weight), self.bias)


class PIPNetwork(nn.Module):
    """The PIP-Net network on normalised images.

    Args:
        features: backbone with ``out_channels``.
        img_size: input side in pixels.
        num_prototypes: P; 0 (the original's default) makes the backbone's
            channels the prototypes, any other number adds a 1x1 convolution.
        num_classes: C.
        proto_layer_rf_info: [n, jump, rf, start] of the latent cells.
        bias: a bias in the classifier (the original's ``--bias``).
    """


    def __init__(self, features: nn.Module, img_size: int, num_prototypes: int, num_classes: int,
                 proto_layer_rf_info: Sequence[float], bias: bool = False,
                 init_weights: bool = True) -> None:
        super().__init__()
        if num_prototypes < 0:
            raise ProtobenchError(f"num_prototypes must be >= 0 (0: the backbone's channels), "
                                  f"got {num_prototypes}")
        self.img_size = img_size
        self.num_classes = num_classes
        self.features = features
        if num_prototypes == 0:
            num_prototypes = features.out_channels
            self.add_on_layers = nn.Sequential(nn.Softmax(dim=1))
        else:
            self.add_on_layers = nn.Sequential(nn.Conv2d(features.out_channels, num_prototypes, 1),
                                               nn.Softmax(dim=1))
        if num_prototypes < 2:  # a softmax over one prototype is 1 everywhere
            raise ProtobenchError(f"PIP-Net needs at least 2 prototypes, got {num_prototypes}")
        self.num_prototypes = num_prototypes
        self.prototype_shape = (num_prototypes, 1, 1, 1)  # one presence channel per prototype
        self.proto_layer_rf_info = list(proto_layer_rf_info)
        self.prototype_activation_function = "presence"
        self.classification = NonNegLinear(num_prototypes, num_classes, bias)
        if init_weights:
            self._initialize_weights()

    # ------------------------------------------------------------ classes
    def prototype_weights(self) -> torch.Tensor:
        """(C, P): the (non-negative) weight of each prototype's presence in each class."""
        return torch.relu(self.classification.weight)

    @property
    def prototype_class_identity(self) -> torch.Tensor:
        """(P, C) float: 1 where the prototype has a positive weight for the class."""
        return (self.prototype_weights() > 0).t().float()

    @property
    def prototype_class(self) -> torch.Tensor:
        """(P,) long: the class of each prototype's largest weight; -1 where all are 0."""
        weights = self.prototype_weights()
        best = weights.argmax(dim=0)
        return torch.where(weights.amax(dim=0) > 0, best, torch.full_like(best, -1))

    # ------------------------------------------------------------ forward
    def presence_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, P, h, w): every prototype's presence at every latent cell."""
        return self.add_on_layers(self.features(x))

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.presence_maps(x)

    def attack_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, P, h, w): the log-odds log(p / (1 - p)) of every presence p, from the scores
        before the softmax.

        Per cell and prototype a strictly increasing function of the presence
        (the same peaks, the same order of cells), but without its saturation:
        where the presence is 1 or 0 in float32 its gradient vanishes, the
        log-odds' does not. The log-odds of prototype j is z_j minus the
        log-sum-exp of the other scores; for every j but the cell's best one,
        whose presence is at most 1/2, that is logsumexp(z) + log(1 - p_j).
        """
        scores = self.add_on_layers[:-1](self.features(x))  # (B, P, h, w), before the softmax
        is_best = torch.zeros_like(scores, dtype=torch.bool).scatter_(
            1, scores.argmax(dim=1, keepdim=True), True)
        rest_of_best = torch.logsumexp(scores.masked_fill(is_best, float("-inf")), dim=1,
                                       keepdim=True)
        presence = torch.softmax(scores, dim=1).masked_fill(is_best, 0.0)  # each <= 1/2
        rest = torch.logsumexp(scores, dim=1, keepdim=True) + torch.log1p(-presence)
        rest = torch.where(is_best, rest_of_best, rest)
        return scores - rest

    def prototype_distances(self, x: torch.Tensor) -> torch.Tensor:
        """1 - presence (B, P, h, w): protobench's stand-in for a distance (module docstring)."""
        return 1 - self.presence_maps(x)

    def distance_2_similarity(self, distances: torch.Tensor) -> torch.Tensor:
        return 1 - distances

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits log(1 + out ** m) (B, C) from pooled presences (B, P)."""
        if not self.training:
            pooled = torch.where(pooled < INFERENCE_THRESHOLD, torch.zeros_like(pooled), pooled)
        with torch.autocast(pooled.device.type, enabled=False):  # the head stays fp32
            out = self.classification(pooled.float())
            return torch.log1p(out ** self.classification.normalization_multiplier)

    def forward_from_distances(self, distances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, C), 1 - pooled presence (B, P)), the shape of the other families' outputs."""
        min_distances = -F.max_pool2d(-distances, kernel_size=distances.shape[2:]).flatten(1)
        return self.classify(1 - min_distances), min_distances

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_from_distances(self.prototype_distances(x))

    def push_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(presence (B, P, h, w), 1 - presence): a source search's inputs."""
        presence = self.presence_maps(x)
        return presence, 1 - presence

    def _initialize_weights(self) -> None:
        for m in self.add_on_layers.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("sigmoid"))
        nn.init.normal_(self.classification.weight, mean=1.0, std=0.1)
        nn.init.constant_(self.classification.normalization_multiplier, 2.0)
        if self.classification.bias is not None:
            nn.init.zeros_(self.classification.bias)
