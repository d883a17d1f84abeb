"""The figures of a benchmark run.

- ``sweep-<attack>.png`` (and ``.pdf``), a page wide (7 in): similarity shift and
  success rates (peak leaves the box, peak in an irrelevant cell, peak in the target)
  against eps, per model and step count, with 95% intervals, the noise control dotted;
  a single eps is drawn as points per model. ``sweep-<attack>-column`` is the peak in
  the target alone, a column wide (3.3 in). Legends sit below the axes;
- ``panel-<attack>-<model>.png``: the attack panel of Hoffmann et al. 2021
  (original with the object's cells, perturbed, perturbation magnified, activation
  before with the perturbed region and the target cells T, activation after with the
  new high-activation box, framed by whether the peak went into T);
- ``jpeg.png`` (and ``.pdf``): similarity shift and "peak leaves R" against JPEG quality;
- ``local-analysis-<model>.png``: "this looks like that" for one test image.
"""

from __future__ import annotations

from collections import Counter
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
from protobench.figures.io import COLUMN_WIDTH, PAGE_WIDTH, PHOTO_COLORS, save_figure, save_vector_figure
from protobench.figures.plotting import eps_errorbar, interpolation_for, with_interval
from protobench.imaging import draw_box, draw_cells, overlay, to_hwc
from protobench.storage import safe_name

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
            written += save_vector_figure(plot_jpeg(group), out / "jpeg.png")
        elif group["eps"].notna().any():
            written += save_vector_figure(plot_sweep(group, attack), out / f"sweep-{attack}.png")
            written += save_vector_figure(plot_sweep(group, attack, "column"),
                                          out / f"sweep-{attack}-column.png")
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
        written += save_vector_figure(plot_defences(summary, models), out / "defences.png")
        table = to_markdown(defence_table(summary, models))
        written.append(storage.write_text(results_dir / "defences.md", table))
    return written


# ------------------------------------------------------------ sweeps
STYLES = ["-", "--", "-.", ":"]


def _series(group: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame, dict]]:
    """(model, label, rows, style) per model x step count, and per model its noise control."""
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    control = group["control"].astype(bool)
    steps = sorted(s for s in group.loc[~control, "steps"].dropna().unique())
    out = []
    for mi, model in enumerate(dict.fromkeys(group["model"])):
        of_model = group["model"] == model
        colour = colours[mi % len(colours)]
        if not steps:  # noise alone
            out.append((model, model, group[of_model], dict(fmt="o", ls="-", color=colour)))
            continue
        for si, s in enumerate(steps):
            out.append((model, f"{model}, {int(s)} steps", group[of_model & ~control & (group["steps"] == s)],
                        dict(fmt="o", ls=STYLES[si % len(STYLES)], color=colour)))
        out.append((model, f"{model}, noise control", group[of_model & control],
                    dict(fmt="x", ls=":", color=colour)))
    return out


def _draw_metric(ax, group: pd.DataFrame, metric: str, kind: str, label: str) -> None:
    """One metric of a sweep: against eps, or, for a single eps, as points per model and
    series (a line over one x value would say nothing)."""
    series = _series(group)
    if group["eps"].nunique() > 1:
        for _, name, rows, style in series:
            eps_errorbar(ax, rows, metric, kind, label=name, **style)
        ax.set_xlabel("eps (x/255)", fontsize=8)
    else:
        models = list(dict.fromkeys(group["model"]))
        width = 0.7 / max(Counter(model for model, *_ in series).values())
        seen: Counter = Counter()
        for model, name, rows, style in series:
            if rows.empty:
                continue
            x = models.index(model) - 0.35 + width * (seen[model] + 0.5)
            seen[model] += 1
            y, err = with_interval(rows.iloc[:1], metric, kind)
            ax.errorbar([x], y, yerr=err, fmt=style["fmt"], color=style["color"], capsize=3, ms=5,
                        label=name)
        ax.set_xticks(range(len(models)), models, rotation=20, ha="right", fontsize=7)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_xlabel(f"model (eps {eps_label(float(group['eps'].iloc[0]))})", fontsize=8)
    ax.set_ylabel(label, fontsize=8)
    if kind == "rate":  # every rate on one scale, so the panels compare at a glance
        ax.set_ylim(-0.02, 1.02)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def plot_sweep(group: pd.DataFrame, attack: str, width: str = "page"):
    """The sweep of one attack, at a page's width (every metric, 2 x 2) or a column's (the
    peak in the target alone); the legend below the axes, off the data."""
    metrics = [m for m in SWEEP_METRICS if f"{m[0]}_{m[1]}" in group]
    if width == "column":
        metrics = [m for m in metrics if m[0] == "peak_in_target"] or metrics[-1:]
        fig = Figure(figsize=(COLUMN_WIDTH, 2.9))
        axes = [fig.subplots(1, 1)]
    else:
        rows = (len(metrics) + 1) // 2
        fig = Figure(figsize=(PAGE_WIDTH, 2.3 * rows + 0.9))
        axes = list(fig.subplots(rows, 2, squeeze=False).flat)
        for ax in axes[len(metrics):]:
            ax.axis("off")
    for ax, (metric, kind, label) in zip(axes, metrics):
        _draw_metric(ax, group, metric, kind, label)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle(f"{attack}: 95% Wilson intervals" if width == "column" else
                 f"{attack}: 95% intervals (bootstrap for means, Wilson for rates)",
                 fontsize=8 if width == "column" else 10)
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=1 if width == "column" else 2, fontsize=6 if width == "column" else 7, frameon=False)
    return fig


def plot_jpeg(group: pd.DataFrame):
    """Similarity shift and "peak leaves R" against JPEG quality, a page wide, legend below."""
    fig = Figure(figsize=(PAGE_WIDTH, 2.8))
    axes = fig.subplots(1, 2)
    for model, rows in group.groupby("model", sort=False):
        rows = rows.sort_values("quality", ascending=False)
        for ax, (metric, kind) in zip(axes, [("sim_shift", "mean"), ("peak_moved", "rate")]):
            y, err = with_interval(rows, metric, kind)
            ax.errorbar(rows["quality"], y, yerr=err, fmt="o-", capsize=3, ms=4, label=model)
    axes[0].set_ylabel("similarity shift", fontsize=8)
    axes[1].set_ylabel("peak leaves R (rate)", fontsize=8)
    for ax in axes:
        ax.set_xlabel("JPEG quality", fontsize=8)
        ax.invert_xaxis()
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle("JPEG compression (Hoffmann et al. 2021, experiment 2)", fontsize=9)
    fig.tight_layout()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=7,
               frameon=False)
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


# the colours of the attack panels' marks (RGB in [0, 1])
BOX_BEFORE, BOX_AFTER, PERTURBED = (1.0, 1.0, 0.0), (1.0, 0.0, 1.0), (0.0, 1.0, 1.0)
TARGET, OBJECT = (1.0, 0.25, 0.0), (1.0, 1.0, 1.0)
SUCCESS, FAILURE = (0.0, 0.8, 0.0), (0.55, 0.55, 0.55)


def plot_attack_panel(panel: AttackPanel, title: str):
    """Hoffmann et al. 2021, fig. 2: one row per stored pair, at a page's width (7 in), with
    the box R, the perturbed region, the target cells T, the object's cells and whether the
    peak went into T (the frame of the last image)."""
    n = len(panel)
    cols = ["original", "perturbed", "perturbation\n(magnified)", "activation\nbefore", "activation\nafter"]
    fig = Figure(figsize=(7, 1.5 * n + 1.0))
    axes = fig.subplots(n, 5, squeeze=False)
    marked = panel.target is not None
    for i, row in enumerate(axes):
        x, xa = torch.from_numpy(panel.x[i]), torch.from_numpy(panel.x_adv[i])
        delta = (xa - x).numpy().transpose(1, 2, 0)
        scale = np.abs(delta).max()
        magnified = 0.5 + 0.5 * delta / scale if scale > 0 else np.full_like(delta, 0.5)
        region = _mask_box(panel.mask[i])
        original = draw_box(to_hwc(x), panel.box_before[i], BOX_BEFORE)
        before = draw_box(overlay(x, torch.from_numpy(panel.sim_before[i])), panel.box_before[i], BOX_BEFORE)
        after = overlay(xa, torch.from_numpy(panel.sim_after[i]))
        if marked:
            original = draw_cells(original, panel.object_cells[i], OBJECT)
            before = draw_cells(before, panel.target[i], TARGET)
            after = draw_cells(after, panel.target[i], TARGET)
        if region is not None:
            before = draw_box(before, region, PERTURBED)
            after = draw_box(after, region, PERTURBED)
        after = draw_box(after, panel.box_after[i], BOX_AFTER)
        label = f"img {int(panel.image[i])}\np{int(panel.prototype[i])}\n" \
                f"pred {int(panel.pred_before[i])}->{int(panel.pred_after[i])}"
        if panel.peak_in_target is not None:
            hit = bool(panel.peak_in_target[i])
            h, w = after.shape[:2]
            after = draw_box(after, (0, h, 0, w), SUCCESS if hit else FAILURE, thickness=max(2, h // 40))
            label += f"\nin T: {'yes' if hit else 'no'}"
        images = [original, to_hwc(xa), magnified, before, after]
        for ax, img, name in zip(row, images, cols):
            ax.imshow(np.clip(img, 0, 1), interpolation=interpolation_for(img))
            ax.axis("off")
            if i == 0:
                ax.set_title(name, fontsize=7)
        row[0].text(-0.08, 0.5, label, transform=row[0].transAxes, ha="right", va="center", fontsize=6)
    legend = ("yellow: high-activation box before; cyan: perturbed region; magenta: box after"
              + ("\nwhite: object cells; orange: target cells T; frame green: the peak went into T, "
                 "grey: it did not" if marked else ""))
    fig.suptitle(f"{title}\n{legend}", fontsize=7)
    fig.tight_layout()
    return fig


def plot_stored_local_analysis(record: LocalAnalysisRecord):
    """The local-analysis figure from the record the runner stored."""
    from protobench.figures.explanations import plot_local_analysis

    analysis, sources = record.to_analysis()
    return plot_local_analysis(analysis, sources)
