"""Figures, drawn from stored results alone (summary.csv and parts/*.npz).

``make_figures(results_dir)`` regenerates every figure of a run without
loading a model or recomputing an attack.
"""

from __future__ import annotations

from pathlib import Path


def make_figures(results_dir: str | Path) -> list[Path]:
    """Write every figure of a run into ``results_dir/figures``; return their paths."""
    from protobench.figures.results import make_figures as _make
    return _make(Path(results_dir))
