"""The benchmark runner: attacks x models x eps x steps, with resumable results.

``run(...)`` (``protobench.benchmark``; ``protobench run`` on the command line)
runs a :class:`~protobench.bench.spec.RunSpec` in three steps:

    plan     (bench/plan.py) read the suite and presets, load the models and images,
             select each attack's (image, prototype) pairs once on the clean images,
             cut the sweep into work units; all before any file is written
    execute  (bench/execute.py) claim the folder, attack and measure every unit not
             yet done (and its uniform-noise control of the same mask and eps),
             writing each at once, so an interrupted sweep loses nothing; under
             torchrun the ranks share the units and rank 0 merges them
    write    (bench/outputs.py) pairs.csv, summary.csv/.md/.tex, the compact table,
             models.json and run.json, all or none

The figures and the report page are drawn from those files by the caller
(``protobench run``, ``protobench.benchmark``), not here.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from protobench.bench.execute import execute
from protobench.bench.outputs import write
from protobench.bench.plan import plan
from protobench.bench.spec import RunSpec
from protobench.devices import restores_threads


@dataclass
class RunResult:
    """What a run wrote; on a rank other than 0 of a sharded run, no summary (rank 0 merges)."""

    out: Path
    summary: pd.DataFrame | None
    computed: list[str] = field(default_factory=list)   # configurations computed in this run
    skipped: list[str] = field(default_factory=list)    # configurations resumed from an earlier one
    seconds: float = 0.0
    rank: int = 0
    report: Path | None = None  # the report page, when the caller wrote one


@restores_threads
def run_spec(spec: RunSpec) -> RunResult:
    """Plan, execute and write the run ``spec`` asks for (the module docstring)."""
    start = time.perf_counter()
    planned = plan(spec, start)
    executed = execute(planned)
    if executed is None:  # a rank other than 0: rank 0 merges and writes
        return RunResult(planned.out, None, rank=planned.ranks.rank,
                         seconds=time.perf_counter() - start)
    summary, computed, resumed = write(planned, executed)
    return RunResult(planned.out, summary, computed, resumed, time.perf_counter() - start)


def run(attacks=None, suite="default", models=None, **options) -> RunResult:
    """Run a benchmark sweep and write its results: ``run_spec(RunSpec(...))``, with the
    fields of :class:`~protobench.bench.spec.RunSpec` as keywords (each documented there).

    ``figures`` (default True) keeps what the figures read; the figures are drawn by
    ``protobench.benchmark`` and ``protobench run`` (or later by ``protobench figures``).
    """
    known = {f.name for f in dataclasses.fields(RunSpec)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"run() got unexpected keyword argument(s) {', '.join(unknown)}; "
                        f"the run's options are RunSpec's fields: {', '.join(sorted(known))}")
    return run_spec(RunSpec(attacks=attacks, suite=suite, models=models, **options))
