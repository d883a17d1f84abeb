"""protobench report: the run page, the leaderboard and the noise alert, on a tiny run."""

import re
import shutil

import pandas as pd
import pytest

from protobench.cli.main import main as protobench
from protobench.cli.run import main as run
from protobench.paths import MODELS_DIR
from protobench.report import leaderboard, write_leaderboard, write_run_page
from protobench.report.noise import NOISE_ALERT, noise_alert

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "synth-smallcnn.pt").exists(),
                                reason="needs the committed default model models/synth-smallcnn.pt")

TINY = ["--model", "synth-smallcnn", "--eps", "8/255", "--steps", "3", "--limit", "3", "--quiet"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "tiny"
    assert run(["--attack", "pgd-local", *TINY, "--out", str(out)]) == 0
    return out


def test_the_run_ends_with_the_compact_table_and_the_report(tmp_path, capsys):
    out = tmp_path / "again"
    assert run(["--attack", "pgd-local", *TINY, "--out", str(out), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "| peak in the target | its noise control |" in printed     # the compact table
    assert "| sim shift |" not in printed                              # not the 16 columns
    assert f"report: {out / 'report.html'}" in printed and (out / "report.html").is_file()


def test_the_run_page_holds_the_table_every_figure_the_command_and_the_provenance(tiny_run, tmp_path):
    page = write_run_page(tiny_run, tmp_path / "page.html").read_text()
    compact = (tiny_run / "compact.md").read_text().splitlines()[2].split(" | ")
    rate = compact[-4]                                   # the attack's peak in the target, "x% [lo, hi]"
    assert re.search(r"\d+% \[\d+, \d+\]", rate) and rate in page
    figures = sorted((tiny_run / "figures").glob("*.png"))
    assert len(figures) >= 3 and page.count('<img src="data:image/png;base64,') == len(figures)
    assert "python -m protobench.run --attack pgd-local --model synth-smallcnn" in page
    import json
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["checkpoints_sha256"]["synth-smallcnn"] in page and info["versions"]["torch"] in page
    hrefs = re.findall(r'href="([^"]+)"', page)        # the files, linked from where the page is
    for name in ("summary.csv", "pairs.csv", "compact.tex"):
        href = next(h for h in hrefs if h.endswith(name))
        assert (tmp_path / href).resolve() == (tiny_run / name).resolve()


def test_a_row_the_noise_already_moves_is_marked():
    assert noise_alert(pd.Series({"peak_moved_rate": 0.0, "pred_kept_rate": 1.0})) is None
    assert noise_alert(None) is None
    moved = noise_alert(pd.Series({"peak_moved_rate": NOISE_ALERT, "pred_kept_rate": 1.0}))
    assert moved == "noise moves the peak out of R for 10%"
    flipped = noise_alert(pd.Series({"peak_moved_rate": 0.0, "pred_kept_rate": 0.5}))
    assert flipped == "noise flips 50% of the predictions"


def _copy_with(run_dir, to, **rates):
    """A copy of a run whose attack rows (or, with control_ prefixes, control rows) get these rates."""
    shutil.copytree(run_dir, to)
    summary = pd.read_csv(to / "summary.csv")
    for column, value in rates.items():
        control = column.startswith("control_")
        summary.loc[summary["control"] == control, column.removeprefix("control_")] = value
    summary.to_csv(to / "summary.csv", index=False)
    return to


def test_the_leaderboard_ranks_the_most_robust_first_and_the_noise_moved_last(tiny_run, tmp_path):
    robust = _copy_with(tiny_run, tmp_path / "robust", peak_in_target_rate=0.05)
    fragile = _copy_with(tiny_run, tmp_path / "fragile", peak_in_target_rate=0.90)
    noisy = _copy_with(tiny_run, tmp_path / "noisy", peak_in_target_rate=0.01,
                       control_peak_moved_rate=0.5)
    board = leaderboard([fragile, noisy, robust])
    assert list(board["run"]) == ["robust", "fragile", "noisy"]
    assert list(board["rank"]) == ["1", "2", "3"] and list(board["_marked"]) == [False, False, True]
    page = write_leaderboard([fragile, noisy, robust], tmp_path / "board.html").read_text()
    for name in ("robust", "fragile", "noisy"):       # each run's page is written and linked
        assert (tmp_path / name / "report.html").is_file()
        assert f'href="{name}/report.html"' in page
    assert page.count('class="flagged"') == 1


def test_report_mistakes_are_one_clear_error_and_no_page(tmp_path, capsys):
    assert protobench(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert protobench(["report", str(tmp_path / "empty")]) == 2
    assert "holds no summary.csv" in capsys.readouterr().err
    assert protobench(["report", "--leaderboard", str(tmp_path / "empty"),
                       "--out", str(tmp_path / "board.html")]) == 2
    assert not (tmp_path / "board.html").exists() and not (tmp_path / "empty" / "report.html").exists()
