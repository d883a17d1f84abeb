"""Figures of ProtoPNet's explanations: local ("this looks like that") and global."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch.utils.data import Dataset

from protobench.explanations import LocalAnalysis
from protobench.figures.plotting import interpolation_for
from protobench.imaging import draw_box, overlay, to_hwc


def plot_local_analysis(analysis: LocalAnalysis, push_set: Dataset | None = None, note: str = ""):
    """One row per top prototype: this (box on the image), its activation, that (source patch).
    A page wide (7 in); small images drawn pixel for pixel (``interpolation_for``). ``note``
    says what the image is ("JPEG-compressed at quality 20"), in the title."""
    rows = len(analysis.evidence)
    fig = Figure(figsize=(7, 1.75 * rows + 0.6))
    axes = fig.subplots(rows, 4, squeeze=False)
    img = to_hwc(analysis.image)
    names = analysis.class_names
    truth = f", true {names[analysis.label]}" if analysis.label is not None else ""
    about = f"{note}: " if note else ""
    fig.suptitle(f"{about}predicted {names[analysis.predicted]}{truth}: this looks like that", fontsize=11)
    for row, ev in zip(axes, analysis.evidence):
        row[0].imshow(draw_box(img, ev.box), interpolation=interpolation_for(img))
        row[0].set_title("this", fontsize=9)
        row[1].imshow(overlay(analysis.image, ev.similarity_map), interpolation=interpolation_for(img))
        row[1].set_title(f"activation of p{ev.prototype}", fontsize=9)
        if push_set is not None and ev.source_image is not None:
            src = to_hwc(push_set[ev.source_image][0])
            y0, y1, x0, x1 = ev.source_box
            row[2].imshow(src[y0:y1, x0:x1], interpolation=interpolation_for(src))
            row[3].imshow(draw_box(src, ev.source_box), interpolation=interpolation_for(src))
        row[2].set_title("looks like that", fontsize=9)
        row[3].set_title(f"p{ev.prototype} ({names[ev.prototype_class]}) source", fontsize=9)
        row[3].text(1.05, 0.5, f"sim {ev.similarity:.2f}\nweight {ev.weight:.2f}\n"
                    f"points {ev.contribution:.2f}", transform=row[3].transAxes, fontsize=8,
                    va="center")
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_global_analysis(indices: torch.Tensor, similarities: torch.Tensor, data: Dataset,
                         prototypes: list[int], class_names: list[str], prototype_class: torch.Tensor):
    """For each chosen prototype, its nearest images (row), most similar first."""
    k = indices.shape[1]
    fig = Figure(figsize=(1.6 * k, 1.7 * len(prototypes)))
    axes = fig.subplots(len(prototypes), k, squeeze=False)
    for row, j in zip(axes, prototypes):
        for ax, i, s in zip(row, indices[j].tolist(), similarities[j].tolist()):
            ax.imshow(to_hwc(data[i][0]))
            ax.set_title(f"{s:.2f}", fontsize=8)
            ax.axis("off")
        row[0].text(-0.15, 0.5, f"p{j}\n{class_names[int(prototype_class[j])]}",
                    transform=row[0].transAxes, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig
