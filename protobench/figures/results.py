"""The figures of a benchmark run.

- ``sweep-<attack>.png``: similarity shift and success rates (peak leaves the box, peak
  in an irrelevant cell, peak in the target) against eps, per
  backbone and step count, with 95% intervals, the noise control dashed;
- ``panel-<attack>-<model>.png``: the attack panel of Hoffmann et al. 2021
  (original, perturbed, perturbation magnified, activation before with the
  perturbed region, activation after with the new high-activation box);
- ``jpeg.png``: similarity shift and "peak leaves R" against JPEG quality;
- ``local-analysis-<model>.png``: "this looks like that" for one test image.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
import numpy as np
import pandas as pd
import torch

from protobench.bench.configuration import config_id
from protobench.bench.records import AttackPanel, LocalAnalysisRecord
from protobench import storage
from protobench.bench.tables import eps_label, to_markdown
from protobench.figures.defences import defence_table, load_model_reports, plot_defences
from protobench.errors import ProtobenchError
from protobench.figures.io import save_figure
from protobench.figures.plotting import eps_errorbar, interpolation_for
from protobench.imaging import draw_box, overlay, to_hwc
from protobench.storage import safe_name

# the palette of the figures of images (panels, local analyses): see save_figure
PHOTO_COLORS = 256

SWEEP_METRICS = [("sim_shift", "mean", "similarity shift (after - before)"),
                 ("out_of_box", "rate", "peak leaves the box (rate)"),
                 ("peak_irrelevant", "rate", "peak in an irrelevant cell (rate)"),
                 ("peak_in_target", "rate", "peak in the target (rate)")]


def read_summary(path: Path) -> pd.DataFrame:
    """summary.csv as protobench.run writes it; a damaged or foreign file is one clear error."""
    from protobench.bench.tables import CONFIG_COLUMNS

    try:
        summary = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ProtobenchError(f"{path} is not a readable CSV ({str(err).strip()[:120]}); "
                              "rerun the run to write it again") from None
    needed = CONFIG_COLUMNS + [f"{metric}_{kind}" for metric, kind, _ in SWEEP_METRICS]
    missing = [c for c in needed if c not in summary.columns]
    if missing:
        raise ProtobenchError(f"{path} lacks column(s) {', '.join(missing)}: not a summary written "
                              "by protobench.run; rerun the run to write it again")
    return summary


def make_figures(results_dir: Path) -> list[Path]:
    summary_path = results_dir / "summary.csv"
    if not summary_path.is_file():
        raise ProtobenchError(f"{results_dir} holds no summary.csv: not a protobench run folder")
    summary = read_summary(summary_path)
    out = results_dir / "figures"
    written = []
    for attack, group in summary.groupby("attack", sort=False):
        if group["quality"].notna().any():
            written.append(save_figure(plot_jpeg(group), out / "jpeg.png"))
        elif group["eps"].notna().any():
            written.append(save_figure(plot_sweep(group, attack), out / f"sweep-{attack}.png"))
    parts = results_dir / "parts"
    for (attack, model), group in summary[~summary["control"].astype(bool)].groupby(
            ["attack", "model"], sort=False):
        chosen = _panel_configuration(group)
        npz = parts / f"{config_id(chosen)}.npz"
        if npz.is_file():
            fig = plot_attack_panel(AttackPanel.load(npz), _panel_title(chosen))
            written.append(save_figure(fig, out / f"panel-{attack}-{safe_name(model)}.png", colors=PHOTO_COLORS))
    for npz in sorted(parts.glob("local-*.npz")):
        fig = plot_stored_local_analysis(LocalAnalysisRecord.load(npz))
        written.append(save_figure(fig, out / f"local-analysis-{npz.stem[len('local-'):]}.png",
                                   colors=PHOTO_COLORS))
    models = load_model_reports(results_dir)
    if models:  # the suite measured its models: what each defence buys and costs
        written.append(save_figure(plot_defences(summary, models), out / "defences.png"))
        table = to_markdown(defence_table(summary, models))
        written.append(storage.write_text(results_dir / "defences.md", table))
    return written


# ------------------------------------------------------------ sweeps
def plot_sweep(group: pd.DataFrame, attack: str):
    metrics = [m for m in SWEEP_METRICS if f"{m[0]}_{m[1]}" in group]
    fig = Figure(figsize=(4.6 * len(metrics), 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    styles = ["-", "--", "-.", ":"]
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    models = list(dict.fromkeys(group["model"]))
    steps = sorted(s for s in group.loc[~group["control"].astype(bool), "steps"].dropna().unique())
    for ax, (metric, kind, label) in zip(axes[0], metrics):
        for mi, model in enumerate(models):
            rows = group[group["model"] == model]
            lines = [(rows[(~rows["control"].astype(bool)) & (rows["steps"] == s)], f"{model}, {int(s)} steps",
                      styles[si % len(styles)], colours[mi % len(colours)], "o")
                     for si, s in enumerate(steps)]
            if not steps:  # noise alone
                lines = [(rows, model, "-", colours[mi % len(colours)], "o")]
            else:
                lines.append((rows[rows["control"].astype(bool)], f"{model}, noise control", ":",
                              colours[mi % len(colours)], "x"))
            for part, name, style, colour, marker in lines:
                eps_errorbar(ax, part, metric, kind, fmt=marker, ls=style, color=colour, label=name)
        ax.set_xlabel("eps (x/255)")
        ax.set_ylabel(label)
        if kind == "rate":  # every rate on one scale, so the panels compare at a glance
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{attack}: 95% intervals (bootstrap for means, Wilson for rates)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_jpeg(group: pd.DataFrame):
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    for model, rows in group.groupby("model", sort=False):
        rows = rows.sort_values("quality", ascending=False)
        for ax, (metric, kind) in zip(axes, [("sim_shift", "mean"), ("peak_moved", "rate")]):
            y = rows[f"{metric}_{kind}"].to_numpy(float)
            err = np.vstack([y - rows[f"{metric}_ci_low"].to_numpy(float),
                             rows[f"{metric}_ci_high"].to_numpy(float) - y])
            ax.errorbar(rows["quality"], y, yerr=np.nan_to_num(err), fmt="o-", capsize=3, label=model)
    axes[0].set_ylabel("similarity shift")
    axes[1].set_ylabel("peak leaves R (rate)")
    for ax in axes:
        ax.set_xlabel("JPEG quality")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("JPEG compression (Hoffmann et al. 2021, experiment 2)", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------ panels
def _panel_configuration(group: pd.DataFrame) -> pd.Series:
    """The strongest setting: largest eps, then most steps (or lowest JPEG quality)."""
    if group["quality"].notna().any():
        return group.sort_values("quality").iloc[0]
    return group.sort_values(["eps", "steps"], na_position="first").iloc[-1]


def _panel_title(row: pd.Series) -> str:
    setting = (f"quality {int(row['quality'])}" if not pd.isna(row["quality"])
               else f"eps {eps_label(row['eps'])}" + ("" if pd.isna(row["steps"]) else f", {int(row['steps'])} steps"))
    return f"{row['attack']} on {row['model']}, {setting}"


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if len(ys) == 0 or mask.all():
        return None
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


def plot_attack_panel(panel: AttackPanel, title: str):
    """Hoffmann et al. 2021, fig. 2: one row per stored pair, at a page's width (7 in)."""
    n = len(panel)
    cols = ["original", "perturbed", "perturbation\n(magnified)", "activation\nbefore", "activation\nafter"]
    fig = Figure(figsize=(7, 1.5 * n + 0.9))
    axes = fig.subplots(n, 5, squeeze=False)
    for i, row in enumerate(axes):
        x, xa = torch.from_numpy(panel.x[i]), torch.from_numpy(panel.x_adv[i])
        delta = (xa - x).numpy().transpose(1, 2, 0)
        scale = np.abs(delta).max()
        magnified = 0.5 + 0.5 * delta / scale if scale > 0 else np.full_like(delta, 0.5)
        region = _mask_box(panel.mask[i])
        before = draw_box(overlay(x, torch.from_numpy(panel.sim_before[i])), panel.box_before[i],
                          (1.0, 1.0, 0.0))
        after = overlay(xa, torch.from_numpy(panel.sim_after[i]))
        if region is not None:
            before = draw_box(before, region, (0.0, 1.0, 1.0))
            after = draw_box(after, region, (0.0, 1.0, 1.0))
        after = draw_box(after, panel.box_after[i], (1.0, 0.0, 1.0))
        images = [draw_box(to_hwc(x), panel.box_before[i]), to_hwc(xa), magnified, before, after]
        for ax, img, name in zip(row, images, cols):
            ax.imshow(np.clip(img, 0, 1), interpolation=interpolation_for(img))
            ax.axis("off")
            if i == 0:
                ax.set_title(name, fontsize=7)
        row[0].text(-0.08, 0.5, f"img {int(panel.image[i])}\np{int(panel.prototype[i])}\n"
                    f"pred {int(panel.pred_before[i])}->{int(panel.pred_after[i])}",
                    transform=row[0].transAxes, ha="right", va="center", fontsize=6)
    fig.suptitle(f"{title}\nyellow: high-activation box before; cyan: perturbed region; "
                 "magenta: high-activation box after", fontsize=7)
    fig.tight_layout()
    return fig


def plot_stored_local_analysis(record: LocalAnalysisRecord):
    """The local-analysis figure from the record the runner stored."""
    from protobench.figures.explanations import plot_local_analysis

    analysis, sources = record.to_analysis()
    return plot_local_analysis(analysis, sources)
