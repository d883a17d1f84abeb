"""Aggregates of per-pair metrics over one configuration (docs/metrics.md).

Continuous metrics get mean, standard deviation and a percentile bootstrap
interval of the mean; rates get a Wilson score interval. All rates and
accuracies are fractions in [0, 1]; PAC and PLC keep the percent of their
definition.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Mapping

import numpy as np

from protobench.metrics.criteria import RATES, rate_columns
from protobench.metrics.per_pair import PairMetrics

# Metrics summarised by mean, std and bootstrap interval, in table order.
CONTINUOUS_METRICS = (
    "sim_before", "sim_after", "sim_shift",
    "sim_R_before", "sim_R_after", "sim_I_before", "sim_I_after", "sim_T_after",
    "pac", "prc", "plc",
    "linf", "l2", "frac_changed",
)
# Boolean metrics summarised by a rate and its Wilson interval (protobench.metrics.criteria).
RATE_METRICS = tuple(rate.column for rate in RATES)  # the built-in rates; rate_columns(): all

# Memory bound of one bootstrap chunk: resamples x values drawn at once.
_BOOTSTRAP_CHUNK = 1 << 22


def _as_array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    return np.asarray(values).reshape(-1)


def _two_sided_z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1); got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def bootstrap_ci(values: Any, level: float = 0.95, n_resamples: int = 1000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (Efron & Tibshirani 1993).

    Draw n_resamples resamples of the non-NaN values with replacement, take
    each one's mean, and return the (1 - level)/2 and (1 + level)/2
    percentiles of those means. The same seed and values give the same
    interval. (nan, nan) when no value is left.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")
    _two_sided_z(level)  # validates level
    x = _as_array(values).astype(np.float64)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, _BOOTSTRAP_CHUNK // n)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    alpha = 1.0 - level
    low, high = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (float(low), float(high))


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial rate (Wilson 1927).

    With p = successes / n and z the two-sided normal quantile of level,

        (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n).

    (nan, nan) when n = 0. Example: 8 of 10 at 95% gives (0.490, 0.943).
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n; got successes={successes}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    z = _two_sided_z(level)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The bounds are exactly 0 and 1 at p = 0 and p = 1; say so without round-off.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def rate_with_interval(successes: int, n: int, level: float = 0.95) -> str:
    """A rate as the tables print it, with its Wilson interval: 8 of 10 -> "80% [49, 94]"."""
    low, high = wilson_interval(successes, n, level)
    return f"{successes / n:.0%} [{100 * low:.0f}, {100 * high:.0f}]"


def _continuous(name: str, x: np.ndarray, level: float, n_resamples: int,
                seed: int) -> dict[str, float]:
    x = x.astype(np.float64)
    x = x[~np.isnan(x)]
    mean = float(x.mean()) if x.size else math.nan
    std = float(x.std(ddof=1)) if x.size > 1 else math.nan
    low, high = bootstrap_ci(x, level, n_resamples, seed)
    return {f"{name}_mean": mean, f"{name}_std": std,
            f"{name}_ci_low": low, f"{name}_ci_high": high}


def _rate(name: str, x: np.ndarray, level: float) -> dict[str, float]:
    x = x.astype(bool)
    successes, n = int(x.sum()), int(x.size)
    low, high = wilson_interval(successes, n, level)
    return {f"{name}_rate": successes / n if n else math.nan,
            f"{name}_ci_low": low, f"{name}_ci_high": high}


def summarize(metrics: PairMetrics | Mapping[str, Any], level: float = 0.95,
              n_resamples: int = 1000, seed: int = 0) -> dict[str, float | int]:
    """One flat table row summarising the pairs of one configuration.

    metrics: a :class:`PairMetrics` or a mapping of metric name -> 1-D
    values (numpy, list or tensor; e.g. ``PairMetrics.to_dict()`` or the
    columns of pairs.csv). Metrics that are absent are skipped; unknown
    names are ignored. Keys, in order:

    - ``n_pairs``;
    - per continuous metric m (CONTINUOUS_METRICS): ``m_mean``, ``m_std``
      (ddof 1), ``m_ci_low``, ``m_ci_high`` (bootstrap of the mean at
      level); NaN values (empty region, undefined PAC) are dropped;
    - per rate m (RATE_METRICS): ``m_rate``, ``m_ci_low``, ``m_ci_high``
      (Wilson), and ``peak_moved_pred_kept_*`` and ``peak_irrelevant_pred_kept_*``,
      the dangerous case of the
      explanation moving while the prediction did not;
    - ``accuracy_before``, ``accuracy_after`` (fractions of pairs whose
      prediction is correct, with Wilson ``_ci_low``/``_ci_high``) and
      ``AC = accuracy_before - accuracy_after``, a fraction (multiply by
      100 for percent points); positive AC means the attack cost accuracy.
    """
    columns = metrics.to_dict() if isinstance(metrics, PairMetrics) else metrics
    arrays = {name: _as_array(v) for name, v in columns.items()
              if name in CONTINUOUS_METRICS or name in rate_columns()
              or name in ("correct_before", "correct_after")}
    lengths = {a.size for a in arrays.values()}
    if len(lengths) > 1:
        raise ValueError(f"metrics have different lengths: "
                         f"{ {k: a.size for k, a in arrays.items()} }")
    row: dict[str, float | int] = {"n_pairs": lengths.pop() if lengths else 0}
    for name in CONTINUOUS_METRICS:
        if name in arrays:
            row.update(_continuous(name, arrays[name], level, n_resamples, seed))
    for name in rate_columns():
        if name in arrays:
            row.update(_rate(name, arrays[name], level))
    for peak in ("peak_moved", "peak_irrelevant"):
        if peak in arrays and "pred_kept" in arrays:
            dangerous = arrays[peak].astype(bool) & arrays["pred_kept"].astype(bool)
            row.update(_rate(f"{peak}_pred_kept", dangerous, level))
    accuracy = {}
    for when in ("before", "after"):
        name = f"correct_{when}"
        if name in arrays:
            rate = _rate(f"accuracy_{when}", arrays[name], level)
            accuracy[when] = rate.pop(f"accuracy_{when}_rate")
            row[f"accuracy_{when}"] = accuracy[when]
            row.update(rate)
    if len(accuracy) == 2:
        row["AC"] = accuracy["before"] - accuracy["after"]
    return row
