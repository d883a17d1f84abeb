"""What each defence buys and what it costs: one table and one figure, from stored results.

Drawn for a run whose suite measured its models (``model_report = true``:
models.json beside summary.csv), e.g. ``python -m protobench.run --suite
defences``. Per model:

- what it costs: test accuracy on its whole test split, and for the JPEG
  experiment the gap between compressed and clean test images of the
  compressed classes (Hoffmann et al. 2021);
- what it buys: per attack and eps, the rate at which the prototype's peak
  lands in the target (an irrelevant cell outside R: the attack moved it onto
  the background), with the uniform-noise control of the same mask and eps
  in parentheses. This is the headline's criterion and the one auto-local
  keeps the best of. "Peak in an irrelevant cell" would also count the
  images whose clean peak already lies on the background; that share is a
  property of the model, given once per model as the first attack's noise
  control at its smallest eps.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from protobench.bench.tables import HEADERS, eps_label
from protobench.figures.plotting import eps_errorbar
from protobench.figures.io import PAGE_WIDTH

RATE = "peak_in_target"  # the benchmark's effect: the attack moved the peak where nothing of the class is


def defence_name(report: dict) -> str:
    """The training options of a model, in words ("none" for an undefended model)."""
    train = report.get("recipe_train") or {}
    parts = []
    if train.get("adversarial"):
        eps = train.get("adversarial_eps")
        steps = train.get("adversarial_steps") if train["adversarial"] != "fgsm" else None
        parts.append(f"adversarial training ({train['adversarial']}"
                     + (f", {steps} steps" if steps else "")
                     + (f", eps {eps_label(float(eps))}" if isinstance(eps, (int, float)) else
                        f", eps {eps}" if eps else "") + ")")
    if train.get("jpeg_augment"):
        j = train["jpeg_augment"]
        parts.append(f"JPEG augmentation (p {j.get('p', 0.5)}, quality {j.get('quality', 20)})")
    return "; ".join(parts) or "none"


def defence_table(summary: pd.DataFrame, models: dict[str, dict]) -> pd.DataFrame:
    """One row per model: its defence, clean accuracy, JPEG gap, and each attack's rate at each eps."""
    rows = []
    attacked = summary[~summary["control"].astype(bool)]
    first = attacked["attack"].iloc[0] if len(attacked) else None
    first_eps = attacked.loc[attacked["attack"] == first, "eps"].dropna().min() if first else None
    clean_column = (None if first_eps is None or np.isnan(first_eps) else
                    f"noise: {HEADERS['peak_irrelevant']} ({first} {eps_label(first_eps)})")
    for model, report in models.items():
        jpeg = report.get("jpeg")
        row = {"model": model, "defence": defence_name(report),
               "test accuracy": f"{report['accuracy']:.1%}",
               "JPEG experiment: compressed / clean (compressed classes)":
                   "-" if not jpeg else f"{jpeg['compressed_classes']['compressed']:.1%} / "
                                        f"{jpeg['compressed_classes']['clean']:.1%}"}
        if clean_column:
            on_background = _rate(summary, model, first, first_eps, control=True, rate="peak_irrelevant")
            row[clean_column] = "-" if on_background is None else f"{on_background:.0%}"
        for attack in dict.fromkeys(attacked["attack"]):
            for eps in sorted(attacked.loc[attacked["attack"] == attack, "eps"].dropna().unique()):
                hit = _rate(summary, model, attack, eps, control=False)
                noise = _rate(summary, model, attack, eps, control=True)
                row[f"{attack} {eps_label(eps)}"] = (
                    "-" if hit is None else f"{hit:.0%}" + ("" if noise is None else f" ({noise:.0%})"))
        rows.append(row)
    return pd.DataFrame(rows)


def _rate(summary: pd.DataFrame, model: str, attack: str, eps: float, control: bool,
          rate: str = RATE) -> float | None:
    rows = summary[(summary["model"] == model) & (summary["attack"] == attack)
                   & (summary["control"].astype(bool) == control) & np.isclose(summary["eps"], eps)]
    if rows.empty or f"{rate}_rate" not in rows:
        return None
    return float(rows[f"{rate}_rate"].iloc[-1])  # the most steps, when a sweep has several


def plot_defences(summary: pd.DataFrame, models: dict[str, dict]):
    """Left: test accuracy (and the JPEG experiment's clean accuracy of the compressed
    classes). Right, one panel per attack: the rate against eps, per model, 95% Wilson
    intervals; the noise control dotted."""
    attacked = summary[~summary["control"].astype(bool)]
    attacks = list(dict.fromkeys(attacked["attack"]))
    rows = (len(attacks) + 2) // 2
    fig = Figure(figsize=(PAGE_WIDTH, 2.7 * rows + 1.0))
    axes = list(fig.subplots(rows, 2, squeeze=False).flat)
    for ax in axes[len(attacks) + 1:]:
        ax.axis("off")
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(models)
    x = np.arange(len(names))
    accuracy = [models[m]["accuracy"] for m in names]
    axes[0].bar(x - 0.2, accuracy, 0.4, color=[colours[i % len(colours)] for i in range(len(names))],
                label="test accuracy")
    clean = [(models[m].get("jpeg") or {}).get("compressed_classes", {}).get("clean", np.nan)
             for m in names]
    axes[0].bar(x + 0.2, clean, 0.4, color="none", edgecolor="black", hatch="//",
                label="clean images of the JPEG classes")
    axes[0].set_xticks(x, names, fontsize=6, rotation=30, ha="right")  # the defences: the table
    axes[0].set_ylim(0, 1.25)  # room above the bars for the legend
    axes[0].set_yticks(np.linspace(0, 1, 6))
    axes[0].set_ylabel("accuracy")
    axes[0].set_title("what it costs", fontsize=9)
    axes[0].legend(fontsize=6, loc="upper center", ncol=2)
    for ax, attack in zip(axes[1:], attacks):
        for i, model in enumerate(names):
            for control, style, marker in ((False, "-", "o"), (True, ":", "x")):
                rows = summary[(summary["model"] == model) & (summary["attack"] == attack)
                               & (summary["control"].astype(bool) == control)]
                eps_errorbar(ax, rows, RATE, "rate", fmt=marker, ls=style,
                             color=colours[i % len(colours)],
                             label=f"{model}{', noise' if control else ''}")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("eps (x/255)")
        ax.set_ylabel(f"{HEADERS[RATE]} (rate)")
        ax.set_title(f"what it buys: {attack}", fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle("Defences side by side (lower is more robust; dotted: uniform noise of the same "
                 "mask and eps)", fontsize=9)
    fig.tight_layout()
    # one legend for the attack panels, below them, where it hides no curve
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=6,
               frameon=False)
    return fig


def load_model_reports(results_dir: Path) -> dict[str, dict] | None:
    path = results_dir / "models.json"
    return json.loads(path.read_text()) if path.is_file() else None
