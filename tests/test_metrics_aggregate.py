"""Aggregates: Wilson and bootstrap intervals, and the summary row."""

import math

import numpy as np
import pytest
import torch

from protobench.metrics.aggregate import bootstrap_ci, rate_with_interval, summarize, wilson_interval
from protobench.metrics.per_pair import PairMetrics


def test_wilson_known_values():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)


def test_a_rate_is_printed_with_its_wilson_interval():
    assert rate_with_interval(8, 10) == "80% [49, 94]"
    assert rate_with_interval(0, 48) == "0% [0, 7]"
    assert rate_with_interval(46, 48) == "96% [86, 99]"


def test_wilson_level_and_edge_cases():
    narrow = wilson_interval(8, 10, level=0.5)
    wide = wilson_interval(8, 10, level=0.99)
    assert wide[0] < narrow[0] < 0.8 < narrow[1] < wide[1]
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_bootstrap_contains_mean_and_is_seeded():
    values = np.random.default_rng(1).normal(2.0, 1.0, size=50)
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high
    assert bootstrap_ci(values, seed=0) == (low, high)
    assert bootstrap_ci(values, seed=1) != (low, high)
    wide = bootstrap_ci(values, level=0.99)
    assert wide[0] <= low and high <= wide[1]


def test_bootstrap_drops_nans_and_handles_degenerate_input():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    with_nan = np.array([1.0, np.nan, 2.0, 3.0, 4.0, np.nan])
    assert bootstrap_ci(with_nan) == bootstrap_ci(values)
    assert bootstrap_ci(torch.tensor([5.0, 5.0, 5.0])) == (5.0, 5.0)
    assert all(math.isnan(v) for v in bootstrap_ci([np.nan]))


def test_summarize_small_dict():
    columns = {
        "sim_shift": np.array([1.0, 2.0, 3.0, np.nan]),
        "peak_moved": np.array([True, False, True, True]),
        "pred_kept": np.array([True, True, False, True]),
        "correct_before": np.array([True, True, True, False]),
        "correct_after": np.array([True, False, False, False]),
        "pred_before": np.array([0, 1, 2, 3]),       # not summarised
    }
    row = summarize(columns)
    assert list(row) == [
        "n_pairs",
        "sim_shift_mean", "sim_shift_std", "sim_shift_ci_low", "sim_shift_ci_high",
        "peak_moved_rate", "peak_moved_ci_low", "peak_moved_ci_high",
        "pred_kept_rate", "pred_kept_ci_low", "pred_kept_ci_high",
        "peak_moved_pred_kept_rate", "peak_moved_pred_kept_ci_low",
        "peak_moved_pred_kept_ci_high",
        "accuracy_before", "accuracy_before_ci_low", "accuracy_before_ci_high",
        "accuracy_after", "accuracy_after_ci_low", "accuracy_after_ci_high",
        "AC",
    ]
    assert row["n_pairs"] == 4
    assert row["sim_shift_mean"] == pytest.approx(2.0)
    assert row["sim_shift_std"] == pytest.approx(1.0)
    assert 1.0 <= row["sim_shift_ci_low"] <= 2.0 <= row["sim_shift_ci_high"] <= 3.0
    assert row["peak_moved_rate"] == 0.75
    assert (row["peak_moved_ci_low"], row["peak_moved_ci_high"]) == wilson_interval(3, 4)
    assert row["pred_kept_rate"] == 0.75
    assert row["peak_moved_pred_kept_rate"] == 0.5
    assert row["accuracy_before"] == 0.75
    assert row["accuracy_after"] == 0.25
    assert row["AC"] == pytest.approx(0.5)
    assert summarize(columns) == row   # seeded


def test_summarize_pair_metrics_has_every_metric():
    n = 5
    floats = torch.linspace(0, 1, n)
    flags = torch.tensor([True, False, True, True, False])
    longs = torch.arange(n)
    metrics = PairMetrics(
        sim_before=floats, sim_after=floats, sim_shift=floats,
        sim_R_before=floats, sim_R_after=floats, sim_I_before=floats, sim_I_after=floats,
        sim_T_after=floats, peak_moved=flags, out_of_box=flags, peak_irrelevant=flags,
        peak_in_target=flags, target_above_clean_peak=flags, pac=floats, prc=longs, plc=floats,
        pred_before=longs, pred_after=longs, pred_kept=flags, in_target_kept=flags,
        correct_before=flags, correct_after=flags,
        linf=floats, l2=floats, frac_changed=floats, outside_unchanged=flags,
    )
    row = summarize(metrics, n_resamples=200)
    for name in ("sim_shift", "pac", "prc", "plc", "linf", "l2", "frac_changed"):
        assert row[f"{name}_mean"] == pytest.approx(float(getattr(metrics, name).float().mean()))
    for name in ("peak_moved", "out_of_box", "peak_irrelevant", "peak_in_target",
                 "target_above_clean_peak", "pred_kept", "outside_unchanged"):
        assert row[f"{name}_rate"] == 0.6
    assert row["AC"] == 0.0
    assert all(isinstance(v, (int, float)) for v in row.values())


def test_summarize_rejects_ragged_columns():
    with pytest.raises(ValueError, match="lengths"):
        summarize({"sim_shift": [1.0, 2.0], "peak_moved": [True]})
