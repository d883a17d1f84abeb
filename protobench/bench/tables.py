"""Summary tables: one row per configuration, as CSV, Markdown and LaTeX.

The summary keeps every aggregate (see :func:`protobench.metrics.summarize`);
the Markdown and LaTeX versions show the headline columns with their 95%
intervals. The compact table is the one a paper prints: per model and attack,
the peak in the target and the prediction kept, each beside its noise control.
"""

from __future__ import annotations

import math

import pandas as pd

from protobench.metrics.criteria import RATES

CONFIG_COLUMNS = ["attack", "control", "model", "backbone", "eps", "steps", "quality"]

# (column in summary.csv, header, kind): "mean" shows mean [ci], "rate" shows % [ci].
# A rate's header says where the prototype's peak (the argmax cell of S_j after the
# attack) lies: outside R, outside the clean high-activation box, in a cell with no
# object pixel (ground truth), in the attack's target cells T.
RATE_HEADERS = {rate.column: rate.header for rate in RATES}  # protobench.metrics.criteria
HEADLINE = [
    ("sim_shift", "sim shift", "mean"),
    *((column, RATE_HEADERS[column], "rate") for column in
      ("peak_moved", "out_of_box", "peak_irrelevant", "peak_in_target", "target_above_clean_peak")),
    ("pac", "PAC %", "mean"),
    ("plc", "PLC %", "mean"),
    ("prc", "PRC", "mean"),
    ("pred_kept", RATE_HEADERS["pred_kept"], "rate"),
    ("accuracy_after", "acc after", "acc"),
]
HEADERS = {column: header for column, header, _ in HEADLINE}


def eps_label(eps: float) -> str:
    """8/255 for multiples of 1/255, else the number."""
    if eps is None or (isinstance(eps, float) and math.isnan(eps)):
        return "-"
    k = eps * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 else f"{eps:g}"


def steps_label(steps) -> str:
    """The step count of a summary row, "-" for none (a noise control, JPEG)."""
    return "-" if steps is None or pd.isna(steps) or steps == 0 else str(int(steps))


def control_rows(summary: pd.DataFrame) -> dict[tuple, pd.Series]:
    """(model, attack, eps) -> the summary row of that attack's noise control."""
    controls = summary[summary["control"].astype(bool)]
    return {(r["model"], r["attack"], r["eps"]): r for _, r in controls.iterrows()}


def format_cell(row: pd.Series, column: str, kind: str) -> str:
    """One cell of a table: a rate as "59% [42, 74]", a mean as "0.12 [0.05, 0.20]", an
    accuracy as "91.6%"; "-" where the summary has no value."""
    if kind == "acc":
        v = row.get(column)
        return "-" if v is None or pd.isna(v) else f"{100 * v:.1f}%"
    key = f"{column}_{kind}"
    if key not in row or pd.isna(row[key]):
        return "-"
    lo, hi = row.get(f"{column}_ci_low"), row.get(f"{column}_ci_high")
    if kind == "rate":
        return f"{100 * row[key]:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]"
    return f"{row[key]:.2f} [{lo:.2f}, {hi:.2f}]"


def headline_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The readable table: configuration columns and headline metrics as strings."""
    out = pd.DataFrame({
        "attack": [a + (" (control)" if c else "") for a, c in zip(summary["attack"], summary["control"])],
        "model": summary["model"],
        "eps": [eps_label(e) for e in summary["eps"]],
        "steps": [steps_label(s) for s in summary["steps"]],
    })
    if summary["quality"].notna().any():
        out["quality"] = ["-" if pd.isna(q) else str(int(q)) for q in summary["quality"]]
    out["pairs"] = summary["n_pairs"].astype(int).astype(str)
    for column, header, kind in HEADLINE:
        out[header] = [format_cell(row, column, kind) for _, row in summary.iterrows()]
    return out


def to_markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def _escape(s: str) -> str:
    return (str(s).replace("\\", r"\textbackslash{}").replace("%", r"\%").replace("_", r"\_")
            .replace("&", r"\&").replace("#", r"\#"))


def to_latex(table: pd.DataFrame) -> str:
    esc = _escape
    lines = [r"\begin{tabular}{" + "l" * 4 + "r" * (len(table.columns) - 4) + "}", r"\toprule",
             " & ".join(esc(c) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(esc(v) for v in row) + r" \\" for row in table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# (column, header) of the compact table; each is followed by its noise control's cell
COMPACT = [(column, RATE_HEADERS[column]) for column in ("peak_in_target", "pred_kept")]
CONTROL_HEADER = "its noise control"


def compact_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per model, attack, eps and steps: the peak in the target and the prediction kept, each
    with its 95% interval and beside the same cell of the attack's noise control ("-" where
    the attack has none)."""
    controls = control_rows(summary)
    rows = []
    for _, row in summary[~summary["control"]].iterrows():
        control = controls.get((row["model"], row["attack"], row["eps"]))
        cells = {"model": row["model"], "attack": row["attack"], "eps": eps_label(row["eps"]),
                 "steps": steps_label(row["steps"])}
        if summary["quality"].notna().any():
            cells["quality"] = "-" if pd.isna(row["quality"]) else str(int(row["quality"]))
        cells["pairs"] = str(int(row["n_pairs"]))
        values = []
        for column, header in COMPACT:
            values.append((header, format_cell(row, column, "rate")))
            values.append((CONTROL_HEADER, "-" if control is None else format_cell(control, column, "rate")))
        rows.append(list(cells.values()) + [v for _, v in values])
    columns = list(cells) + [h for h, _ in values] if rows else []
    return pd.DataFrame(rows, columns=columns)


def to_latex_table(table: pd.DataFrame, caption: str, label: str) -> str:
    """A floating booktabs table with caption and label (\\usepackage{booktabs})."""
    return "\n".join([r"\begin{table}[t]", r"\centering", r"\small",
                      rf"\caption{{{_escape(caption)}}}", rf"\label{{{label}}}",
                      to_latex(table).rstrip("\n"), r"\end{table}"]) + "\n"


COMPACT_CAPTION = ("Each attack on the top-1 prototype's explanation beside uniform noise of the same "
                   "mask and budget (its noise control): the share of pairs whose peak lies in the "
                   "attack's target cells, and whose prediction is kept, with 95% Wilson intervals.")
