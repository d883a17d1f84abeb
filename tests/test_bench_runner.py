"""The runner end to end, on a tiny configuration of the committed small model."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from protobench.cli.run import main
from protobench.paths import MODELS_DIR, ROOT

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "synth-smallcnn.pt").exists(),
                                reason="needs the committed default model models/synth-smallcnn.pt")

TINY = ["--model", "synth-smallcnn", "--eps", "4/255,8/255", "--steps", "3", "--limit", "4",
        "--quiet"]


def test_end_to_end_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--attack", "pgd-local", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| attack |" in printed and f"results in {out}" in printed
    for name in ["pairs.csv", "summary.csv", "summary.md", "summary.tex", "compact.md", "compact.tex", "run.json"]:
        assert (out / name).is_file(), name
    assert r"\label{tab:run}" in (out / "compact.tex").read_text()
    pairs = pd.read_csv(out / "pairs.csv")
    summary = pd.read_csv(out / "summary.csv")
    # 2 eps x (attack + noise control), 4 images x top-1 prototype
    assert len(summary) == 4 and len(pairs) == 16
    assert set(summary["control"]) == {True, False}
    assert pairs["outside_unchanged"].all()
    assert (pairs["linf"] <= pairs["eps"] + 1e-6).all()
    run = json.loads((out / "run.json").read_text())
    assert run["versions"]["torch"] and run["versions"]["opencv"] and run["device"] == "cpu" and run["seed"] == 0
    assert run["threads"] >= 1 and run["threads_chosen_by"] == "the caller's torch setting"
    assert sum(run["threads_units"].values()) == 4                            # each unit's threads
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"sweep-pgd-local.png", "sweep-pgd-local.pdf", "sweep-pgd-local-column.png",
            "sweep-pgd-local-column.pdf", "panel-pgd-local-synth-smallcnn.png",
            "local-analysis-synth-smallcnn.png"} <= figures
    from protobench.bench.reuse import run_figures   # what --fresh removes: every figure drawn here
    assert {p.name for p in run_figures(out)} == figures


def test_same_seed_same_numbers_and_resume_recomputes_nothing(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["--attack", "pgd-local", *TINY, "--out", str(a), "--no-figures"]) == 0
    assert main(["--attack", "pgd-local", *TINY, "--out", str(b), "--no-figures"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(a / "summary.csv"), pd.read_csv(b / "summary.csv"))
    capsys.readouterr()
    assert main(["--attack", "pgd-local", *TINY, "--out", str(a), "--no-figures"]) == 0
    assert "0 configurations computed, 4 resumed" in capsys.readouterr().out


def test_pairs_are_attacked_in_batches_of_batch_size(tmp_path, monkeypatch):
    """--batch-size only bounds memory: without random starts, batches of 3
    pairs give the numbers of one batch of 4."""
    import protobench.attacks.perturb as perturb
    sizes = []

    def recording(model, images, pairs, *args):
        sizes.append(len(pairs))
        return run_attack(model, images, pairs, *args)

    run_attack = perturb.run_attack
    monkeypatch.setattr(perturb, "run_attack", recording)
    preset = tmp_path / "pgd-fixed.toml"
    preset.write_text((ROOT / "attacks" / "pgd-local.toml").read_text()
                      .replace("random_start = true", "random_start = false"))
    one, three = tmp_path / "one", tmp_path / "three"
    assert main(["--attack", str(preset), *TINY, "--out", str(one), "--no-figures"]) == 0
    assert main(["--attack", str(preset), *TINY, "--batch-size", "3", "--out", str(three),
                 "--no-figures"]) == 0
    assert sizes == [4, 4] + [3, 1, 3, 1]  # 2 eps, attacked pairs only (controls add noise)
    a, b = (pd.read_csv(d / "pairs.csv") for d in (one, three))
    attacked = ~a["control"]
    assert attacked.sum() == 8 and (a["image"] == b["image"]).all()
    # float sums in another order: the log similarity's slope 1/d (about 60 at the
    # d of 0.017 of synth-smallcnn's peaks) turns 2e-6 in d into 1e-4 in similarity,
    # and 40 Auto-PGD steps carry it on; the kernels are the CPU's own (up to 9e-4 on an
    # AVX-512 machine, 1e-4 on another). A batching error (another pair's image, mask or
    # target) moves the similarity by tenths: the attack shifts it by 0.8-2.0 here.
    for column in ["sim_shift", "sim_after", "linf"]:
        assert (a.loc[attacked, column] - b.loc[attacked, column]).abs().max() < 5e-3, column
    assert (a.loc[attacked, "peak_moved"] == b.loc[attacked, "peak_moved"]).all()
    assert json.loads((three / "run.json").read_text())["suite"]["batch_size"] == 3


def test_batches_never_split_an_image_and_another_batch_size_is_another_run(tmp_path, capsys):
    import torch
    from protobench.attacks.perturb import pair_batches as _batches

    class Fake:  # only what _batches reads: image_index and slicing
        def __init__(self, image_index):
            self.image_index = torch.tensor(image_index)

        def __getitem__(self, s):
            return Fake(self.image_index[s].tolist())

    def sizes(image_index, batch_size):
        return [b.image_index.tolist() for b in _batches(Fake(image_index), batch_size)]

    assert sizes([0, 0, 1, 1, 2], 3) == [[0, 0], [1, 1, 2]]
    assert sizes([0, 0, 1, 1, 2], 1) == [[0, 0], [1, 1], [2]]  # an image larger than a batch
    assert sizes([0, 1, 2, 3], 64) == [[0, 1, 2, 3]]
    out = tmp_path / "run"
    assert main(["--attack", "pgd-local", *TINY, "--out", str(out), "--no-figures"]) == 0
    capsys.readouterr()
    assert main(["--attack", "pgd-local", *TINY, "--out", str(out), "--no-figures",
                 "--batch-size", "3"]) == 2
    assert "suite.batch_size: 64 -> 3" in capsys.readouterr().err


def test_suite_batch_size_and_seed_must_be_integers_in_range():
    from protobench.bench.suite import load_suite
    from protobench.errors import ProtobenchError
    assert load_suite("default").batch_size == 64
    for bad in (0, 2.5, True):
        with pytest.raises(ProtobenchError, match="batch_size"):
            load_suite("default", batch_size=bad)
    with pytest.raises(ProtobenchError, match="seed -1 must be an integer >= 0"):
        load_suite("default", seed=-1)


def test_a_value_twice_on_an_axis_is_refused_before_anything_is_written(tmp_path, capsys):
    """It would be one configuration counted twice: twice the pairs, too narrow intervals."""
    from protobench.bench.suite import load_suite
    from protobench.errors import ProtobenchError
    for axis, values, match in (("eps", "8/255,4/255,8/255", "listed twice"),
                                ("eps", [0.0313726, "8/255"], "agree to 6 decimals"),
                                ("steps", "10,40,10", "40|10"),
                                ("models", ["synth-smallcnn", "synth-smallcnn"], "listed twice")):
        with pytest.raises(ProtobenchError, match=f"the suite's {axis}: .*({match})"):
            load_suite("default", **{axis: values})
    out = tmp_path / "run"
    assert main([*TINY, "--eps", "8/255,8/255", "--out", str(out)]) == 2
    assert "listed twice" in capsys.readouterr().err
    assert not out.exists()


def test_an_unknown_model_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TINY, "--model", "no-such-model", "--out", str(out)]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.faults
def test_a_changed_checkpoint_is_never_resumed_into_old_results(tmp_path, capsys):
    import shutil
    model = tmp_path / "model.pt"
    shutil.copy(MODELS_DIR / "synth-smallcnn.pt", model)
    args = ["--attack", "pgd-local", *TINY[2:], "--model", str(model), "--out", str(tmp_path / "run"),
            "--no-figures"]
    assert main(args) == 0
    with open(model, "ab") as f:  # a retrained model: other bytes at the same path
        f.write(b"\0")
    capsys.readouterr()
    assert main(args) == 2
    assert "different run" in capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["checkpoints_sha256"]


@pytest.mark.faults
def test_results_of_other_code_are_recomputed_only_with_fresh(tmp_path, capsys, monkeypatch):
    import protobench.source as source
    out = tmp_path / "run"
    args = ["--attack", "pgd-local", *TINY, "--out", str(out), "--no-figures"]
    assert main(args) == 0
    capsys.readouterr()
    monkeypatch.setattr(source, "source_digest", lambda: "an edited engine")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "computed by other code" in err and "source_sha256" in err and "--fresh" in err
    assert main([*args, "--fresh"]) == 0
    assert "4 configurations computed" in capsys.readouterr().out
    assert json.loads((out / "settings.json").read_text())["code"]["source_sha256"] == "an edited engine"


def test_the_source_digest_follows_the_code():
    from protobench.source import code_identity, source_digest
    import torch
    assert source_digest() == source_digest() and len(source_digest()) == 64
    identity = code_identity(torch.device("cpu"))
    assert identity["device"] == "cpu" and identity["torch"] == torch.__version__


@pytest.mark.faults
@pytest.mark.parametrize("bad", [
    ["--dataset", "folder", "--data-root", "/no/such/folder"],
    ["--first-image", "100000"],
    ["--backbone", "vgg11"],
    ["--top-k", "1000", "--prototypes", "top-k"],
])
def test_a_failed_run_leaves_no_folder_that_blocks_the_corrected_one(tmp_path, capsys, bad):
    out = tmp_path / "run"
    assert main(["--attack", "pgd-local", *TINY, "--out", str(out), "--no-figures", *bad]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (out / "settings.json").exists()
    assert main(["--attack", "pgd-local", *TINY, "--out", str(out), "--no-figures"]) == 0


def test_nothing_of_another_run_that_failed_early_is_taken_as_this_runs(tmp_path):
    """A run that stopped before its first unit leaves its settings, model reports and
    local analyses; a different run in that folder must not reuse them, and --fresh drops
    an earlier run's tables before it starts (a crash then leaves no old numbers)."""
    out = tmp_path / "run"
    suite = tmp_path / "reports.toml"
    suite.write_text('models = ["synth-smallcnn"]\neps = ["8/255"]\nsteps = [2]\nimages = 2\n'
                     'model_report = true\n')
    args = ["--suite", str(suite), "--quiet", "--no-figures", "--out", str(out)]
    assert main([*args, "--seed", "1"]) == 0
    for unit in (out / "parts").glob("*/*.csv"):  # as if that run had stopped before any unit
        unit.unlink()
    (out / "parts" / "model-synth-smallcnn.json").write_text('{"accuracy": 0.123}')
    assert main(args) == 0  # another run (seed 0)
    assert json.loads((out / "models.json").read_text())["synth-smallcnn"]["accuracy"] != 0.123

    from protobench.bench import reuse
    (out / "figures").mkdir()
    (out / "figures" / "sweep-pgd-local.png").write_bytes(b"old")
    (out / "figures" / "jpeg-m-test7.png").write_bytes(b"drawn by protobench.explain")
    reuse.remove_results(out)  # what --fresh does before it computes anything
    left = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert left == ["jpeg-m-test7.png"], left


@pytest.mark.faults
def test_figures_of_a_damaged_summary_are_one_clear_error(tmp_path, capsys):
    from protobench.cli.figures import main as figures_main
    (tmp_path / "summary.csv").write_text("a,b\n1,2\n")
    assert figures_main([str(tmp_path)]) == 2
    assert "lacks column(s) attack" in capsys.readouterr().err
    (tmp_path / "summary.csv").write_bytes(b"\x00\xff\xfe")
    assert figures_main([str(tmp_path)]) == 2
    assert "is not a readable CSV" in capsys.readouterr().err
    assert not (tmp_path / "figures").exists()


@pytest.mark.faults
def test_a_run_that_fails_before_its_first_unit_leaves_no_file(tmp_path, capsys):
    """NaN in the model's output: one clear error, and no settings.json of a run that
    computed nothing."""
    import torch

    import protobench
    from protobench.model import save_checkpoint
    model = protobench.load("synth-smallcnn")
    with torch.no_grad():
        model.net.prototype_vectors.fill_(float("nan"))
    broken = save_checkpoint(model, tmp_path / "broken.pt")
    out = tmp_path / "run"
    assert main(["--model", str(broken), "--steps", "2", "--limit", "2", "--quiet", "--no-figures",
                 "--out", str(out)]) == 2
    assert "NaN" in capsys.readouterr().err
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_eps_and_steps_take_a_list_in_either_form(tmp_path):
    spaced, commas = tmp_path / "spaced", tmp_path / "commas"
    common = ["--attack", "pgd-local", "--model", "synth-smallcnn", "--limit", "2", "--quiet", "--no-figures"]
    assert main([*common, "--eps", "4/255", "8/255", "--steps", "2", "3", "--out", str(spaced)]) == 0
    assert main([*common, "--eps", "4/255,8/255", "--steps", "2,3", "--out", str(commas)]) == 0
    a, b = pd.read_csv(spaced / "summary.csv"), pd.read_csv(commas / "summary.csv")
    assert len(a) == 6  # 2 eps x (2 step counts + the control)
    pd.testing.assert_frame_equal(a.drop(columns=[c for c in a if "second" in c]),
                                  b.drop(columns=[c for c in b if "second" in c]))


@pytest.mark.faults
def test_a_folder_claimed_by_a_live_run_is_refused_and_a_stale_claim_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    args = ["--attack", "pgd-local", *TINY, "--out", str(out), "--no-figures"]
    (out / ".lock").write_text(str(os.getpid()))  # a live process holds it
    assert main(args) == 2
    assert f"another run (pid {os.getpid()}) is writing to {out}" in capsys.readouterr().err
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (out / ".lock").write_text(gone)  # a killed run's claim
    assert main(args) == 0
    assert not (out / ".lock").exists()


@pytest.mark.faults
def test_a_full_disk_is_one_line_and_leaves_the_folder_resumable(tmp_path, capsys, monkeypatch):
    import errno
    from pathlib import Path
    out = tmp_path / "run"
    args = ["--attack", "pgd-local", *TINY, "--out", str(out), "--no-figures"]
    real_write_text = Path.write_text

    def full_disk(self, *a, **k):  # the disk fills while the summaries are written
        if "summary.tex" in self.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_text(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full_disk)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no space left on device writing") and "summary.tex" in err
    assert "Traceback" not in err
    written = {p.name for p in out.iterdir()}
    assert not written & {"pairs.csv", "summary.csv", "summary.md", "summary.tex", "run.json"}
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(list((out / "parts").glob("*/*.csv"))) == 4  # every configuration kept
    monkeypatch.undo()
    assert main(args) == 0
    assert "0 configurations computed, 4 resumed" in capsys.readouterr().out
    assert (out / "summary.tex").is_file() and (out / "run.json").is_file()


def test_a_limit_past_the_split_is_capped_and_recorded(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--attack", "pgd-local", "--model", "synth-smallcnn", "--eps", "8/255", "--steps", "1",
            "--limit", "100000", "--first-image", "497", "--quiet", "--no-figures", "--out", str(out)]
    assert main(args) == 0
    assert "100000 images asked for, the test split has 3 from image 497 on" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["images_per_model"] == {"synth-smallcnn": 3}


@pytest.mark.faults
def test_a_folder_without_finished_configurations_is_not_protected(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "settings.json").write_text(json.dumps({"suite": "something else"}))
    assert main(["--attack", "pgd-local", *TINY, "--out", str(out), "--no-figures"]) == 0


def test_figures_are_regenerated_from_stored_results_alone(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert main(["--attack", "pgd-local", *TINY, "--out", str(out)]) == 0
    drawn = sorted(p.name for p in (out / "figures").iterdir())
    for figure in (out / "figures").iterdir():
        figure.unlink()
    import protobench
    monkeypatch.setattr(protobench, "load", lambda *a, **k: pytest.fail("figures loaded a model"))
    from protobench.cli.figures import main as figures_main
    assert figures_main([str(out)]) == 0
    # the sweep (a page and a column wide, PNG and PDF), the panel and the local analysis
    assert sorted(p.name for p in (out / "figures").iterdir()) == drawn and len(drawn) == 6


@pytest.mark.faults
def test_interrupted_sweep_resumes_without_loss(tmp_path):
    """Kill the process mid-sweep, run again, compare with an uninterrupted run."""
    args = [sys.executable, "-m", "protobench.run", "--attack", "pgd-local", "--model", "synth-smallcnn",
            "--eps", "1/255,2/255,4/255,8/255,16/255", "--steps", "10", "--limit", "6", "--quiet",
            "--no-figures"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    interrupted, full = tmp_path / "interrupted", tmp_path / "full"
    proc = subprocess.Popen([*args, "--out", str(interrupted)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((interrupted / "parts").glob("*/*.csv"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list((interrupted / "parts").glob("*/*.csv")))
    assert 2 <= done_before < 10, "the kill should land mid-sweep"
    assert not (interrupted / "summary.csv").exists()
    # no half-written unit survives as a csv: every one read back whole
    assert all(len(pd.read_csv(p)) == 6 for p in (interrupted / "parts").glob("*/*.csv"))
    resumed = subprocess.run([*args, "--out", str(interrupted)], cwd=ROOT, env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done_before} resumed" in resumed.stdout
    subprocess.run([*args, "--out", str(full)], cwd=ROOT, env=env, check=True, capture_output=True)
    pd.testing.assert_frame_equal(pd.read_csv(interrupted / "pairs.csv").drop(columns="seconds"),
                                  pd.read_csv(full / "pairs.csv").drop(columns="seconds"))


@pytest.mark.parametrize("argv, message", [
    (["--attack", "pgd-nowhere"], "unknown attack 'pgd-nowhere'"),
    (["--eps", "2/255,x"], "eps"),
    (["--eps", "1.5"], "numbers in (0, 1]"),
    (["--eps", "0"], "eps=0.0 is invalid in the sweep's eps (--eps, or the suite's eps list); allowed: numbers in (0, 1]"),
    (["--steps", "0"], "steps"),
    (["--seed", "-1"], "seed -1"),
    (["--backbone", "resnet19"], "unknown backbone 'resnet19'"),
    (["--dataset", "folder", "--data-root", "/nonexistent/data"], "/nonexistent/data"),
    (["--model", "no-such-model"], "no-such-model"),
])
def test_bad_input_is_one_clear_message_and_no_file(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main([*TINY[:-1], *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (out / "summary.csv").exists() and not (out / "pairs.csv").exists()


def test_unwritable_output_folder(tmp_path, capsys):
    # a path below a regular file cannot be created, even by root
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main([*TINY, "--out", str(blocker / "run")]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_first_image_attacks_images_the_default_suite_never_saw(tmp_path):
    out = tmp_path / "heldout"
    assert main(["--attack", "pgd-local", "--model", "synth-smallcnn", "--eps", "8/255",
                 "--steps", "2", "--limit", "3", "--first-image", "40", "--quiet",
                 "--no-figures", "--out", str(out)]) == 0
    pairs = pd.read_csv(out / "pairs.csv")
    assert sorted(set(pairs["image"])) == [40, 41, 42]
    past = tmp_path / "past"
    assert main(["--attack", "pgd-local", "--model", "synth-smallcnn", "--limit", "3",
                 "--first-image", "100000", "--quiet", "--no-figures", "--out", str(past)]) == 2


def test_the_ensemble_runs_in_the_runner(tmp_path):
    out = tmp_path / "auto"
    assert main(["--attack", "auto-local", "--model", "synth-smallcnn", "--eps", "8/255",
                 "--steps", "3", "--limit", "4", "--quiet", "--no-figures",
                 "--out", str(out)]) == 0
    pairs = pd.read_csv(out / "pairs.csv")
    attacked = ~pairs["control"].astype(bool)
    assert attacked.sum() == 4 and (~attacked).sum() == 4
    assert pairs["outside_unchanged"].all() and (pairs["linf"] <= 8 / 255 + 1e-6).all()
    assert set(pairs.columns) >= {"out_of_box", "peak_in_target", "target_above_clean_peak"}


def test_benchmark_takes_a_model_in_memory_and_matches_its_checkpoint(tmp_path):
    """protobench.benchmark runs a ProtoPNet module as it runs its checkpoint, under its meta name."""
    import protobench

    model = protobench.load("synth-smallcnn")
    assert model.meta.name == "synth-smallcnn"
    common = dict(attacks=["pgd-local"], eps="8/255", steps="3", limit=3, figures=False,
                  progress=False)
    in_memory = protobench.benchmark(models=[model], out=tmp_path / "mine", **common)
    named = protobench.benchmark(models=["synth-smallcnn"], out=tmp_path / "named", **common)
    pd.testing.assert_frame_equal(in_memory.summary, named.summary)
    model.meta.name = "mine"  # the name is the table's and seeds the configuration
    renamed = protobench.benchmark(models=[model], out=tmp_path / "renamed", **common)
    assert set(renamed.summary["model"]) == {"mine"}
    with pytest.raises(Exception, match="give its images with data="):   # tests/test_bench_foreign_model.py
        protobench.benchmark(models=[protobench.PrototypeAdapter(
            model, similarity_maps=model.similarity_maps, prototype_class=model.prototype_class,
            img_size=model.img_size)], out=tmp_path / "foreign", **common)


def test_any_preset_value_is_set_from_the_command_line(tmp_path):
    out = tmp_path / "set"
    assert main(["--attack", "pgd-local", "--model", "synth-smallcnn", "--eps", "8/255",
                 "--steps", "2", "--limit", "2", "--quiet", "--no-figures", "--out", str(out),
                 "--set", "method=apgd", "--set", "restarts=2", "--set", "objective=target-margin",
                 "--set", "target=farthest"]) == 0
    [attack] = json.loads((out / "run.json").read_text())["attacks"]
    assert (attack["method"], attack["restarts"], attack["objective"], attack["target"]) == (
        "apgd", 2, "target-margin", "farthest")


@pytest.mark.parametrize("setting, message", [
    ("restarts", "write KEY=VALUE"), ("eps=0.1", "axis of the sweep"),
    ("colour=red", "attack options: unknown key(s) 'colour'"), ("restarts=0", "restarts=0 is invalid")])
def test_a_bad_set_is_one_clear_error_and_no_folder(tmp_path, capsys, setting, message):
    out = tmp_path / "bad"
    assert main(["--attack", "pgd-local", *TINY, "--out", str(out), "--set", setting]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_an_attack_given_as_a_toml_path_gets_a_results_folder_named_after_it(tmp_path, monkeypatch):
    import protobench.bench.plan as plan
    preset = tmp_path / "my-attack.toml"
    preset.write_text((ROOT / "attacks" / "pgd-local.toml").read_text())
    monkeypatch.setattr(plan, "RESULTS_DIR", tmp_path / "results")
    assert main(["--attack", str(preset), *TINY, "--no-figures"]) == 0
    assert (tmp_path / "results" / "my-attack" / "summary.csv").is_file()


def test_a_suite_with_model_reports_draws_what_each_defence_buys_and_costs(tmp_path):
    suite = tmp_path / "mini-defences.toml"
    suite.write_text('models = ["synth-smallcnn"]\nattacks = ["pgd-suppress"]\neps = ["8/255"]\n'
                     'steps = [2]\nimages = 2\nmodel_report = true\n')
    out = tmp_path / "run"
    assert main(["--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    models = json.loads((out / "models.json").read_text())
    assert models["synth-smallcnn"]["accuracy"] == 0.916  # its whole test split (models/README.md)
    assert models["synth-smallcnn"]["jpeg"] is None
    assert (out / "figures" / "defences.png").is_file()
    from protobench.bench.reuse import run_figures
    assert set(run_figures(out)) == set((out / "figures").iterdir())
    assert (out / "figures" / "defences.pdf").is_file()
    table = (out / "defences.md").read_text()
    assert "| synth-smallcnn | none | 91.6% | - |" in table
    assert "pgd-suppress 8/255" in table  # the suite's attacks, as none was named


@pytest.mark.faults
def test_undecodable_images_of_the_split_are_counted_in_run_json(tmp_path):
    import cv2
    import numpy as np

    import protobench
    classes = protobench.load("synth-smallcnn").meta.classes
    rng = np.random.default_rng(0)
    for name in classes:
        (tmp_path / "tree" / "test" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "tree" / "test" / name / "a.png"),
                    rng.integers(0, 256, (64, 64, 3), np.uint8))
    broken = tmp_path / "tree" / "test" / classes[1] / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="skipped 1 image"):
        assert main(["--attack", "noise", "--model", "synth-smallcnn", "--dataset", "folder",
                     "--data-root", str(tmp_path / "tree"), "--eps", "8/255", "--steps", "1",
                     "--limit", "2", "--quiet", "--no-figures", "--out", str(out)]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["undecodable_images"] == {"synth-smallcnn": {"count": 1, "files": [str(broken)]}}


def test_a_suite_sets_preset_values_for_its_attacks_and_the_command_line_wins(tmp_path, capsys):
    suite = tmp_path / "topk.toml"
    suite.write_text('models = ["synth-smallcnn"]\neps = ["8/255"]\nsteps = [1]\nimages = 3\n'
                     '[attack_options]\nk = 2\n')
    out = tmp_path / "run"
    assert main(["--suite", str(suite), "--attack", "noise", "--quiet", "--no-figures",
                 "--out", str(out)]) == 0
    assert len(pd.read_csv(out / "pairs.csv")) == 3 * 2  # top-2 prototypes of 3 images
    assert main(["--suite", str(suite), "--attack", "noise", "--top-k", "1", "--quiet",
                 "--no-figures", "--out", str(tmp_path / "k1")]) == 0
    assert len(pd.read_csv(tmp_path / "k1" / "pairs.csv")) == 3
    suite.write_text('models = ["synth-smallcnn"]\n[attack_options]\nsteps = 3\n')
    assert main(["--suite", str(suite), "--out", str(tmp_path / "bad")]) == 2
    assert "attack_options.steps: steps is an axis of the sweep" in capsys.readouterr().err


def test_batch_size_auto_is_the_suites_on_the_cpu_and_a_resumed_run_keeps_its_own(tmp_path, capsys):
    from protobench.bench.batching import batch_from_memory
    assert batch_from_memory(10 * 2**30, 2**30) == 6  # 60% of 10 GiB at 1 GiB a pair
    assert batch_from_memory(1, 2**30) == 1 and batch_from_memory(2**50, 1) == 4096
    out = tmp_path / "run"
    assert main(["--attack", "noise", *TINY, "--batch-size", "3", "--out", str(out),
                 "--no-figures"]) == 0
    capsys.readouterr()
    assert main(["--attack", "noise", *TINY, "--batch-size", "auto", "--out", str(out),
                 "--no-figures"]) == 0
    captured = capsys.readouterr()
    assert "--batch-size auto: 3, the size" in captured.err
    assert "0 configurations computed" in captured.out and "resumed" in captured.out
    fresh = tmp_path / "fresh"
    assert main(["--attack", "noise", *TINY, "--batch-size", "auto", "--out", str(fresh),
                 "--no-figures"]) == 0
    assert "--batch-size auto: the suite's 64 (no memory to probe on the CPU)" in capsys.readouterr().err
    assert json.loads((fresh / "run.json").read_text())["suite"]["batch_size"] == 64
    with pytest.raises(SystemExit):  # argparse: exit 2 with the usage line
        main(["--attack", "noise", *TINY, "--batch-size", "big", "--out", str(fresh)])
    assert "'big' is not an integer >= 1 or 'auto'" in capsys.readouterr().err


def test_a_suite_without_panels_stores_none_and_negative_panels_are_refused(tmp_path, capsys):
    suite = tmp_path / "nopanels.toml"
    suite.write_text('models = ["synth-smallcnn"]\neps = ["8/255"]\nsteps = [1]\nimages = 2\npanels = 0\n')
    out = tmp_path / "run"
    assert main(["--suite", str(suite), "--attack", "pgd-local", "--quiet", "--out", str(out)]) == 0
    stored = [p.name for p in (out / "parts").glob("*.npz")]
    assert stored == ["local-synth-smallcnn.npz"]  # the local analysis, no attack panel
    suite.write_text('models = ["synth-smallcnn"]\npanels = -1\n')
    assert main(["--suite", str(suite), "--out", str(tmp_path / "bad")]) == 2
    assert "panels -1 must be an integer >= 0" in capsys.readouterr().err
