"""Metrics of prototype robustness: per pair (pairs.py), then per configuration (aggregate.py).

Pure functions on tensors; they know nothing of models, attacks or the runner.
"""

from protobench.metrics.aggregate import (
    CONTINUOUS_METRICS,
    RATE_METRICS,
    bootstrap_ci,
    rate_with_interval,
    summarize,
    wilson_interval,
)
from protobench.metrics.per_pair import (
    PairMetrics,
    pac,
    out_of_box,
    pair_metrics,
    peak_in_target,
    peak_irrelevant,
    peak_moved,
    perturbation_norms,
    plc,
    prc,
    predictions,
    prototype_rank,
    region_max,
    similarity_shift,
    target_above_clean_peak,
)

__all__ = [
    "CONTINUOUS_METRICS", "RATE_METRICS", "PairMetrics", "bootstrap_ci", "out_of_box", "pac",
    "pair_metrics", "peak_in_target", "peak_irrelevant", "peak_moved", "perturbation_norms",
    "plc", "prc", "predictions", "prototype_rank", "rate_with_interval", "region_max",
    "similarity_shift", "summarize", "target_above_clean_peak", "wilson_interval",
]
