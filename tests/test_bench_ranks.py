"""The sharded runner: torchrun with gloo on the CPU gives a single-process run's numbers,
and a run whose rank was killed resumes, with any number of ranks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from protobench.bench.ranks import Ranks
from protobench.paths import MODELS_DIR, ROOT

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "synth-smallcnn.pt").exists(),
                                reason="needs the committed default model models/synth-smallcnn.pt")

# torchrun gives each worker one thread (OMP_NUM_THREADS=1); the single-process runs here
# use one too, as another thread count sums convolutions in another order (about 1e-3 in a
# log similarity)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run_args(out: Path, eps: str = "4/255,8/255", steps: str = "3") -> list[str]:
    return ["-m", "protobench.run", "--attack", "pgd-local", "--model", "synth-smallcnn",
            "--eps", eps, "--steps", steps, "--limit", "6", "--batch-size", "2", "--quiet",
            "--no-figures", "--out", str(out)]


def _torchrun(nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc)]


def _pairs(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "pairs.csv").drop(columns="seconds")


def test_units_are_shared_round_robin():
    ranks = [Ranks(r, 3) for r in range(3)]
    owners = [[r.rank for r in ranks if r.owns(i)] for i in range(7)]
    assert owners == [[0], [1], [2], [0], [1], [2], [0]]
    assert Ranks().main and Ranks().owns(5) and not Ranks(1, 2).main


@pytest.mark.slow
def test_two_gloo_ranks_give_the_single_process_numbers(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, *_run_args(one)], cwd=ROOT, env=ENV, check=True,
                   capture_output=True)
    done = subprocess.run([*_torchrun(2), *_run_args(two)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("| attack |") == 1  # rank 0 alone reports
    pd.testing.assert_frame_equal(_pairs(one), _pairs(two))
    info = json.loads((two / "run.json").read_text())
    assert info["ranks"] == 2 and info["work_units"] == 12  # 4 configurations x 3 batches of 2
    for cfg in pd.read_csv(two / "summary.csv")["config_id"]:
        assert (two / "parts" / f"{cfg}.npz").is_file()  # the panels, merged from the units


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _rank_process(launcher: int, rank: int) -> int | None:
    for pid in _children(launcher):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return pid
    return None


@pytest.mark.slow
def test_a_killed_rank_resumes_with_another_number_of_ranks(tmp_path):
    killed, single = tmp_path / "killed", tmp_path / "single"
    args = _run_args(killed, eps="1/255,2/255,4/255,8/255", steps="10")  # 8 configurations, 24 units
    proc = subprocess.Popen([*_torchrun(2), *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and len(list((killed / "parts").glob("*/*.csv"))) < 3:
        time.sleep(0.05)
    victim = _rank_process(proc.pid, 1)
    assert victim is not None, "rank 1 not found among torchrun's workers"
    os.kill(victim, signal.SIGKILL)
    assert proc.wait(timeout=120) != 0  # torchrun stops the other rank and fails
    done_before = len(list((killed / "parts").glob("*/*.csv")))
    assert 3 <= done_before < 24, "the kill should land mid-sweep"
    assert not (killed / "summary.csv").exists()

    resumed = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True,
                             text=True)  # one rank now
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    info = json.loads((killed / "run.json").read_text())
    assert info["ranks"] == 1 and info["work_units_resumed"] == done_before
    subprocess.run([sys.executable, *_run_args(single, eps="1/255,2/255,4/255,8/255", steps="10")],
                   cwd=ROOT, env=ENV, check=True, capture_output=True)
    pd.testing.assert_frame_equal(_pairs(killed), _pairs(single))
