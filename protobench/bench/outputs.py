"""Writing a run's results: pairs.csv, the summaries, the compact table and run.json.

All of them are written together or none (``storage.atomic_write_all``): a full
disk changes none. The figures and the report page are drawn afterwards, from
these files, by the command that ran the sweep (``protobench figures`` and
``protobench report`` draw them again).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from protobench import storage
from protobench.bench import provenance
from protobench.bench.execute import Executed
from protobench.bench.plan import Plan
from protobench.bench.tables import (
    COMPACT_CAPTION, CONFIG_COLUMNS, compact_table, headline_table, to_latex, to_latex_table,
    to_markdown,
)
from protobench.metrics import summarize


def write(plan: Plan, executed: Executed) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The run's files; returns (summary, configurations computed, configurations resumed)."""
    units, merged, done_before = plan.units, executed.merged, executed.done_before
    # a configuration is resumed when every one of its units was done before this run
    partly_new = {u.cfg.id for i, u in enumerate(units) if i not in done_before}
    computed = [cfg.id for cfg, _ in merged if cfg.id in partly_new]
    resumed = [cfg.id for cfg, _ in merged if cfg.id not in partly_new]
    pairs_frame = pd.concat([rows for _, rows in merged], ignore_index=True)
    summary = summarize_pairs(pairs_frame)
    spec, dev, used = plan.spec, plan.device, executed.threads_used
    write_outputs(plan.out, pairs_frame, summary, executed.reports or None, {
        "command": list(spec.command) if spec.command is not None else sys.argv,
        **plan.settings, "seed": plan.suite.seed, "device": str(dev),
        "device_name": provenance.device_name(dev), "ranks": plan.ranks.world,
        "threads": plan.threading.threads, "threads_chosen_by": plan.threading.chosen_by,
        # how many of this run's work units ran on each number of threads
        "threads_units": {str(n): used.count(n) for n in sorted(set(used))},
        "versions": provenance.versions(), "git_commit": provenance.git_commit(),
        "images_per_model": {m.name: len(m.md.indices) for m in plan.models},
        "data_workers": spec.workers,
        # image files of each model's split that could not be decoded and were left out
        "undecodable_images": {m.name: {"count": len(m.md.undecodable), "files": m.md.undecodable[:20]}
                               for m in plan.models},
        "configurations_computed": computed, "configurations_resumed": resumed,
        "work_units": len(units), "work_units_resumed": len(done_before),
        # the attack's own time (not measuring), summed over each configuration's pairs,
        # whichever rank or earlier attempt computed them
        "attack_seconds_per_configuration": {
            cfg.id: round(float(rows["seconds"].sum()), 3) for cfg, rows in merged},
        "seconds_total": round(time.perf_counter() - plan.start, 2),
    })
    return summary, computed, resumed


def summarize_pairs(pairs_frame: pd.DataFrame) -> pd.DataFrame:
    """One summary row per configuration, in the order configurations first appear."""
    keys = ["config_id", *CONFIG_COLUMNS] if "config_id" in pairs_frame else CONFIG_COLUMNS
    frame = pairs_frame.copy()
    frame[["eps", "steps", "quality"]] = frame[["eps", "steps", "quality"]].astype(float)
    out = []
    for key, group in frame.groupby(keys, dropna=False, sort=False):
        out.append({**dict(zip(keys, key)), **summarize(group)})
    return pd.DataFrame(out)


def write_outputs(out: Path, pairs_frame: pd.DataFrame, summary: pd.DataFrame,
                  models: dict[str, Any] | None = None, run_info: dict[str, Any] | None = None) -> None:
    """pairs.csv, summary.csv/.md/.tex, the compact table (compact.md/.tex: each attack beside
    its noise control, the table a paper prints, labelled tab:<folder name>), models.json
    (model reports) and run.json, all or none (a full disk changes none)."""
    table, compact = headline_table(summary), compact_table(summary)
    label = "tab:" + re.sub(r"[^A-Za-z0-9-]+", "-", out.resolve().name)
    writers = {
        out / "pairs.csv": lambda tmp: pairs_frame.to_csv(tmp, index=False),
        out / "summary.csv": lambda tmp: summary.to_csv(tmp, index=False),
        out / "summary.md": lambda tmp: tmp.write_text(to_markdown(table)),
        out / "summary.tex": lambda tmp: tmp.write_text(to_latex(table)),
        out / "compact.md": lambda tmp: tmp.write_text(to_markdown(compact)),
        out / "compact.tex": lambda tmp: tmp.write_text(to_latex_table(compact, COMPACT_CAPTION, label)),
    }
    if models is not None:
        writers[out / "models.json"] = lambda tmp: tmp.write_text(storage.json_text(models))
    if run_info is not None:
        writers[out / "run.json"] = lambda tmp: tmp.write_text(storage.json_text(run_info))
    storage.atomic_write_all(writers)
