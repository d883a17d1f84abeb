"""A lean repository: results/ in git holds summaries, pairs.csv and compressed figures, within a
budget per suite; the per-pair arrays (parts/*.npz) are regenerable and stay out."""

import shutil
import subprocess
from pathlib import Path

import pytest

from protobench.paths import ROOT

SUITE_BUDGET = 5 * 2**20     # bytes per committed suite folder (results/<suite>/)
RESULTS_BUDGET = 20 * 2**20  # bytes for the whole of results/

pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                                reason="needs the git checkout")


def _tracked(under: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z", under], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def test_no_per_pair_arrays_are_committed():
    assert [p for p in _tracked("results") if p.suffix == ".npz"] == []


def test_every_committed_suite_fits_its_budget():
    sizes: dict[str, int] = {}
    for path in _tracked("results"):
        parts = path.relative_to(ROOT / "results").parts
        if len(parts) > 1:
            sizes[parts[0]] = sizes.get(parts[0], 0) + path.stat().st_size
    over = {suite: f"{size / 2**20:.1f} MB" for suite, size in sizes.items() if size > SUITE_BUDGET}
    assert sizes and not over, f"over the {SUITE_BUDGET / 2**20:.0f} MB budget of a suite: {over}"
    assert sum(sizes.values()) <= RESULTS_BUDGET
