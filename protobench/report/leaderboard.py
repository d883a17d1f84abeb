"""``protobench report --leaderboard RUN_DIR...``: model x attack across runs, on one page.

Each row is one attack on one model at one eps and step count, from one run. Rows are
ranked, within each eps, by the share of pairs whose peak the attack puts into its target
cells: the most robust explanation first. Beside the rate stand its 95% interval, the same
rate under the noise control, and the prediction kept; a row whose noise control already
moves the peak or flips the prediction (protobench.report.noise) is marked and ranked
after the others, since its rate is no evidence about the attack.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from protobench.bench.tables import control_rows, eps_label, format_cell, steps_label
from protobench.errors import ProtobenchError
from protobench.report.html import escape, page, table
from protobench.report.noise import NOISE_ALERT, noise_alert
from protobench.report.run_page import PAGE_NAME, read_run, write_run_page
from protobench.storage import atomic_write

COLUMNS = ["rank", "model", "attack", "eps", "steps", "pairs", "peak in the target",
           "its noise control", "pred kept", "run"]


def leaderboard(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per model, attack, eps and steps of every run; the cells as strings, plus
    the columns ``_rate``, ``_alert`` and ``_run_dir`` used to rank, mark and link."""
    rows = []
    for run_dir in run_dirs:
        summary, _ = read_run(run_dir)
        if "peak_in_target_rate" not in summary:
            continue
        controls = control_rows(summary)
        for _, row in summary[~summary["control"].astype(bool)].iterrows():
            if pd.isna(row["peak_in_target_rate"]):
                continue  # an attack with no target cells (JPEG, whole-image): no such rate
            control = controls.get((row["model"], row["attack"], row["eps"]))
            rows.append({
                "model": row["model"], "attack": row["attack"], "eps": eps_label(row["eps"]),
                "steps": steps_label(row["steps"]),
                "pairs": str(int(row["n_pairs"])),
                "peak in the target": format_cell(row, "peak_in_target", "rate"),
                "its noise control": "-" if control is None else format_cell(control, "peak_in_target", "rate"),
                "pred kept": format_cell(row, "pred_kept", "rate"),
                "run": run_dir.resolve().name,
                "_eps": row["eps"], "_rate": row["peak_in_target_rate"],
                "_alert": noise_alert(control), "_run_dir": run_dir})
    if not rows:
        raise ProtobenchError("none of the runs holds an attack with a target (peak in the "
                              "target rate): nothing to rank")
    board = pd.DataFrame(rows)
    board["_marked"] = board["_alert"].notna()
    board = board.sort_values(["_eps", "_marked", "_rate", "model", "attack"], kind="stable")
    board["rank"] = board.groupby("_eps").cumcount() + 1
    board["rank"] = board["rank"].astype(str)
    return board.reset_index(drop=True)


def write_leaderboard(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Write each run's page (RUN_DIR/report.html) and the leaderboard page that links them."""
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ProtobenchError("give at least one run folder to rank")
    out = Path(out)
    board = leaderboard(run_dirs)
    for run_dir in dict.fromkeys(run_dirs):
        write_run_page(run_dir)
    links = [Path(os.path.relpath((d / PAGE_NAME).resolve(), out.resolve().parent)).as_posix()
             for d in board["_run_dir"]]
    body = ["<h1>protobench leaderboard</h1>",
            f'<p class="lead">{len(board)} attacks on explanations from {len(run_dirs)} runs. '
            "Within each eps, ranked by the share of pairs whose prototype peak the attack puts "
            "into its target cells, lowest (the most robust explanation) first; 95% Wilson "
            "intervals in brackets. Each rate stands beside the same rate under uniform noise "
            "of the same mask and budget (its noise control). Marked rows, ranked last: the "
            f"noise control already moves the peak out of R or flips the prediction for at "
            f"least {NOISE_ALERT:.0%} of the pairs.</p>"]
    for eps, group in board.groupby("_eps", sort=True):
        body += [f"<h2>eps {escape(eps_label(eps))}</h2>",
                 table(group[COLUMNS].reset_index(drop=True),
                       flagged=list(group["_marked"]),
                       links={"run": [links[i] for i in group.index]})]
    text = page("protobench leaderboard", body)
    return atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
