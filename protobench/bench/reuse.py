"""The resume guard: a run folder resumes only the run that wrote it.

Each finished work unit is a file (parts/<configuration>/batch<i>.csv); settings.json holds
what the run was (suite, presets, checkpoints, code). A folder is resumed
only when they match; it is replaced with ``fresh``, or when the other run
finished no unit (it failed early): then nothing of it is kept.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from protobench.errors import ProtobenchError


def finished_parts(out: Path) -> list[Path]:
    """The finished work units (parts/<configuration>/batch<i>.csv; parts/<configuration>.csv
    in folders written before runs were cut into units)."""
    parts = out / "parts"
    return sorted([*parts.glob("*/*.csv"), *parts.glob("*.csv")]) if parts.is_dir() else []


# what a finished run writes at the top of its folder (runner.write_outputs); a test runs the
# whole runner and checks that remove_results leaves no file of it behind
OUTPUTS = ("pairs.csv", "summary.csv", "summary.md", "summary.tex", "compact.md", "compact.tex", "report.html",
           "models.json", "run.json")
# the figures a run draws into figures/ (protobench.figures.results.make_figures; a test checks
# that it draws no other); a figure another command drew there (protobench.explain) stays
FIGURES = ("sweep-*.png", "sweep-*.pdf", "panel-*.png", "jpeg.png", "jpeg.pdf", "local-analysis-*.png",
           "defences.png", "defences.pdf")


def run_figures(out: Path) -> list[Path]:
    """The figures in out/figures that a run draws (FIGURES)."""
    return [path for pattern in FIGURES for path in (out / "figures").glob(pattern)]


def remove_results(out: Path) -> None:
    """Drop every file of an earlier run: its finished units, their arrays, model reports and
    local analyses, its settings, and the tables and figures it wrote. Then a run that stops
    early leaves no numbers of another run beside its own settings."""
    parts = out / "parts"
    for path in [*finished_parts(out), *parts.glob("*/*.npz"), *parts.glob("*.npz"),
                 *parts.glob("*.json"), out / "settings.json", *(out / name for name in OUTPUTS),
                 *run_figures(out)]:
        path.unlink(missing_ok=True)
    for folder in parts.glob("*/"):
        with contextlib.suppress(OSError):  # a unit folder holding anything else stays
            folder.rmdir()


def check_same_run(out: Path, settings: dict[str, Any], fresh: bool = False) -> None:
    """Refuse to resume into a folder whose finished configurations belong to another run.

    "Another run": other settings, checkpoints or code (``protobench.source.code_identity``).
    A folder with settings.json but no finished configuration is not a run
    to protect (a run that failed before its first configuration), and
    ``fresh`` overrides the check. Writes nothing.
    """
    if fresh or not finished_parts(out):
        return
    differ = stored_differences(out, settings)
    if not differ:
        return
    if all(d.startswith("code") for d in differ):
        raise ProtobenchError(f"{out} holds results computed by other code ({'; '.join(differ[:2])}); "
                              "rerun with --fresh to recompute them there, or choose another --out")
    raise ProtobenchError(f"{out} holds the results of a different run ({'; '.join(differ[:3])}); "
                          "choose another --out, or rerun with --fresh to replace them")


def stored_differences(out: Path, settings: dict[str, Any]) -> list[str]:
    """How the run recorded in the folder's settings.json differs from ``settings`` (none
    when the folder records no run)."""
    stored = out / "settings.json"
    if not stored.exists():
        return []
    return differences(json.loads(stored.read_text()), json.loads(json.dumps(settings, default=str)))


def holds_another_run(out: Path, settings: dict[str, Any]) -> bool:
    """Whether the folder's settings.json is another run's. Past :func:`check_same_run`,
    that run finished no unit (it failed early), but its model reports and local analyses
    (parts/model-*.json, parts/local-*.npz) would otherwise be taken as this run's."""
    return bool(stored_differences(out, settings))


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """'key: old -> new' for every setting that differs (nested keys joined by dots)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new), key=str)
                for d in differences(old.get(k), new.get(k), f"{where}.{k}" if where else str(k))]
    if old == new:
        return []
    if where.startswith("checkpoints_sha256"):
        return [f"{where}: the checkpoint has changed"]
    short = [json.dumps(v)[:60] for v in (old, new)]
    return [f"{where}: {short[0]} -> {short[1]}"]
