"""research/recipe_sweep.py's choose: a candidate is chosen by its own figures alone."""

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def choose(benchmark_script):
    return benchmark_script("recipe_sweep").choose


def _table(**columns):
    base = {"recipe": ["a", "b", "c"], "accuracy": [0.95, 0.97, 0.93], "on_object": [0.85, 0.9, 0.82],
            "joint_epochs": [10, 10, 10], "noise_peak_stays": [0.95, 0.97, 0.92],
            "noise_pred_kept": [0.93, 0.99, 0.95], "latent_saturation": [0.1, 0.12, 0.15],
            "elsewhere_ratio": [200.0, 30.0, 11.0], "distance_ratio": [10.0, 500.0, 900.0]}
    return pd.DataFrame({**base, **columns})


def test_the_realism_ratio_nearest_the_papers_decides_among_those_that_pass(choose):
    assert choose(_table()) == "c"  # elsewhere ratio 11 is nearest 10.7 (not distance_ratio's 10)


def test_a_model_that_the_noise_control_moves_is_no_candidate(choose):
    assert choose(_table(noise_peak_stays=[0.95, 0.97, 0.72])) == "b"
    assert choose(_table(noise_pred_kept=[0.93, 0.99, 0.84])) == "b"


def test_a_saturated_latent_is_no_candidate(choose):
    assert choose(_table(latent_saturation=[0.1, 0.12, 0.42])) == "b"


def test_accuracy_and_prototypes_on_the_object_are_bars(choose):
    assert choose(_table(accuracy=[0.95, 0.97, 0.85])) == "b"
    assert choose(_table(on_object=[0.85, 0.9, 0.7])) == "b"


def test_without_noise_and_saturation_columns_the_old_rule_holds(choose):
    table = _table().drop(columns=["noise_peak_stays", "noise_pred_kept", "latent_saturation",
                                   "elsewhere_ratio"])
    assert choose(table) == "a"  # distance_ratio 10 is nearest 10.7


def test_when_none_passes_the_most_on_the_object_is_kept(choose):
    assert choose(_table(noise_peak_stays=[0.5, 0.5, 0.5])) == "b"
