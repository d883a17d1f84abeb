"""Pages to look at: one self-contained HTML page per run, a leaderboard across runs, and a
Markdown card per model.

All three are drawn from what a run or a training already wrote (summary.csv, run.json,
figures/, the checkpoint and ``evaluate``'s report); nothing here loads a model or attacks.
"""

from protobench.report.card import model_card
from protobench.report.leaderboard import leaderboard, write_leaderboard
from protobench.report.run_page import write_run_page

__all__ = ["leaderboard", "model_card", "write_leaderboard", "write_run_page"]
