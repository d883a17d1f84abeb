"""The tables a run writes: the compact one puts each attack's noise control beside it."""

import pandas as pd

from protobench.bench.tables import (
    COMPACT_CAPTION, compact_table, headline_table, to_latex_table, to_markdown,
)


def _row(attack, control, model, rate, kept, n=32, eps=8 / 255, steps=40.0):
    row = {"attack": attack, "control": control, "model": model, "backbone": "b", "eps": eps,
           "steps": float("nan") if control else steps, "quality": float("nan"), "n_pairs": n}
    for column, value in (("peak_in_target", rate), ("pred_kept", kept)):
        row |= {f"{column}_rate": value, f"{column}_ci_low": value / 2, f"{column}_ci_high": (1 + value) / 2}
    return row


SUMMARY = pd.DataFrame([
    _row("pgd-local", False, "m1", 0.5, 0.75),
    _row("pgd-local", True, "m1", 0.0, 1.0),
    _row("jpeg-like", False, "m1", 0.25, 0.5),           # an attack without a control
    _row("pgd-local", False, "m2", 1.0, 0.25),
    _row("pgd-local", True, "m2", 0.125, 0.875),
])


def test_the_compact_table_sets_each_attack_beside_its_own_models_control():
    table = compact_table(SUMMARY)
    assert list(table.columns) == ["model", "attack", "eps", "steps", "pairs", "peak in the target",
                                   "its noise control", "pred kept", "its noise control"]
    assert table.values.tolist() == [
        ["m1", "pgd-local", "8/255", "40", "32", "50% [25, 75]", "0% [0, 50]", "75% [38, 88]", "100% [50, 100]"],
        ["m1", "jpeg-like", "8/255", "40", "32", "25% [12, 62]", "-", "50% [25, 75]", "-"],
        ["m2", "pgd-local", "8/255", "40", "32", "100% [50, 100]", "12% [6, 56]", "25% [12, 62]", "88% [44, 94]"],
    ]
    assert len(headline_table(SUMMARY)) == 5              # the full table keeps the control rows


def test_the_latex_table_floats_with_booktabs_a_caption_and_a_label():
    tex = to_latex_table(compact_table(SUMMARY), COMPACT_CAPTION, "tab:headline")
    for part in (r"\begin{table}", r"\caption{Each attack", r"95\% Wilson", r"\label{tab:headline}",
                 r"\toprule", r"\midrule", r"\bottomrule", r"\end{table}", r"50\% [25, 75]"):
        assert part in tex, part
    assert to_markdown(compact_table(SUMMARY)).count("\n") == 5   # header, rule, 3 rows
