"""A stopped training goes on from its last finished epoch to the very weights of an
uninterrupted one (protobench.training.resume)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from protobench.cli.train import main as train_main
from protobench.errors import ProtobenchError
from protobench.source import code_identity
from protobench.training import recipe_data, trainer
from protobench.training.recipe import load_recipe, recipe_from_dict
from protobench.training.resume import load_state, recipe_key, resume_path, save_state
from test_training_trainer import TINY, _toml

# pre-training, warm, joint, push at 1 and 3 with last-layer epochs after each: every
# kind of state a stop can fall between (optimisers, the scheduler, the generators)
TWO_PUSHES = {**TINY, "train": {**TINY["train"], "pretrain_epochs": 1, "epochs": 4, "warm_epochs": 1,
                                "push_epochs": [1, 3], "last_layer_epochs": 1}}
FAMILIES = {
    # ProtoPNet with FGSM training: the adversary's random starts
    "protopnet-fgsm": {**TWO_PUSHES, "train": {**TWO_PUSHES["train"], "adversarial": "fgsm"}},
    # ProtoPool with mixup: its Gumbel noise (torch's global generator) and mixup's generator
    "protopool-mixup": {**TWO_PUSHES,
                        "model": {**TWO_PUSHES["model"], "family": "protopool", "num_prototypes": 6},
                        "train": {**TWO_PUSHES["train"], "mixup": 0.5, "gumbel_epochs": 2}},
    # ProtoPNet on cached features of two augmented copies, its last block fine-tuned: the cache
    # is rebuilt on resume, and the latent features from the resumed tail
    "protopnet-cached": {**TWO_PUSHES, "train": {**TWO_PUSHES["train"], "trainable_blocks": 1,
                                                 "cached_augmentations": 2}},
}


class Stop(Exception):
    """Stands in for a killed job."""


def _train(recipe, data, resume=None):
    return trainer.train(recipe, data.train, data.push, data.test, data.classes, progress=False,
                         log=lambda _: None, resume=resume)


def _stop_at(monkeypatch, n):
    """Make the n-th training pass (0-based, after the pre-training) raise Stop."""
    real, calls = trainer.run_epoch, []

    def counting(*args, **kwargs):
        calls.append(1)
        if len(calls) > n:
            raise Stop
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "run_epoch", counting)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_stopped_training_resumes_to_the_weights_of_an_uninterrupted_one(family, tmp_path, monkeypatch):
    recipe = recipe_from_dict(family, FAMILIES[family])
    data = recipe_data(recipe)
    whole = _train(recipe, data)
    state = tmp_path / "m.pt.resume"
    # passes: warm 0, joint 1, last 1, joint 2, joint 3, last 3; stop in joint epoch 2 and
    # again in joint epoch 3 (the first resume resumes from epoch 2, the second from 3)
    for stop in (3, 1):
        _stop_at(monkeypatch, stop)
        with pytest.raises(Stop):
            _train(recipe, data, state)
        monkeypatch.undo()
        assert state.is_file()
    assert load_state(state, recipe_key(recipe.raw), code_identity(torch.device("cpu"))).next_epoch == 3
    resumed = _train(recipe, data, state)
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.test_accuracy == whole.test_accuracy
    assert [(h.stage, h.epoch, h.loss) for h in resumed.history] == \
        [(h.stage, h.epoch, h.loss) for h in whole.history]
    assert [r.to_dict() for r in resumed.push_records] == [r.to_dict() for r in whole.push_records]


def _stopped_command(tmp_path, monkeypatch, passes):
    """The train command on TWO_PUSHES, stopped after ``passes`` training passes: (recipe
    file, checkpoint path, argv)."""
    path, out = tmp_path / "tiny.toml", tmp_path / "tiny.pt"
    path.write_text(_toml(TWO_PUSHES))
    argv = ["--recipe", str(path), "--out", str(out), "--quiet", "--device", "cpu", "--no-prototype-images"]
    _stop_at(monkeypatch, passes)
    with pytest.raises(Stop):
        train_main(argv)
    monkeypatch.undo()
    assert not out.exists() and resume_path(out).is_file()
    return path, out, argv


def test_the_train_command_resumes_then_removes_the_state(tmp_path, capsys, monkeypatch):
    path, out, argv = _stopped_command(tmp_path, monkeypatch, 2)
    state = load_state(resume_path(out), recipe_key(load_recipe(path).raw), code_identity(torch.device("cpu")))
    state.seconds = 1e6  # as if the first run had trained for 11 days
    save_state(resume_path(out), state)
    lock = _lock(out)
    lock.write_text(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                   capture_output=True, text=True).stdout.strip())  # a killed run's claim
    assert train_main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out.is_file() and not resume_path(out).exists() and not lock.exists()
    # the whole history is in the checkpoint, and its training time counts both runs
    from protobench.model import load_checkpoint
    history = load_checkpoint(out).meta.history
    assert [e["stage"] for e in history["epochs"]] == \
        ["pretrain", "warm", "joint", "last", "joint", "joint", "last"]
    assert 1e6 < history["train_seconds"] < 1e6 + 600
    assert history["test_accuracy"] == report["test_accuracy"]


def _lock(out):
    from protobench.storage import file_claim
    return file_claim(out, "training").path


def test_a_second_training_toward_the_same_checkpoint_is_refused(tmp_path, capsys, monkeypatch):
    # two trainings toward one --out would overwrite each other's state
    path, out, argv = _stopped_command(tmp_path, monkeypatch, 1)
    assert not _lock(out).exists()  # the stopped training gave up its claim
    _lock(out).write_text(str(os.getpid()))  # a live training holds it
    state = resume_path(out).read_bytes()
    assert train_main(argv) == 2
    assert f"another training (pid {os.getpid()}) is writing to {out}" in capsys.readouterr().err
    assert not out.exists() and resume_path(out).read_bytes() == state


def test_an_interrupted_training_says_how_to_resume(tmp_path, capsys, monkeypatch):
    path, out = tmp_path / "tiny.toml", tmp_path / "tiny.pt"
    path.write_text(_toml(TWO_PUSHES))
    monkeypatch.setattr(trainer, "run_epoch", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert train_main(["--recipe", str(path), "--out", str(out), "--quiet", "--device", "cpu"]) == 130
    assert "the same command goes on from the last finished epoch" in capsys.readouterr().err
    assert not out.exists() and resume_path(out).is_file()


def test_a_state_of_another_recipe_is_refused_and_fresh_discards_it(tmp_path, capsys, monkeypatch):
    path, out, argv = _stopped_command(tmp_path, monkeypatch, 1)
    path.write_text(_toml({**TWO_PUSHES, "train": {**TWO_PUSHES["train"], "seed": 1}}))
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert "holds a stopped training of another recipe" in err and "--fresh" in err
    assert not out.exists() and resume_path(out).is_file()  # nothing written, nothing discarded
    assert train_main(argv + ["--fresh"]) == 0
    assert out.is_file() and not resume_path(out).exists()


def test_a_stale_state_is_refused_before_the_data_are_built(tmp_path, capsys, monkeypatch):
    import protobench.training as training
    path, out, argv = _stopped_command(tmp_path, monkeypatch, 1)
    path.write_text(_toml({**TWO_PUSHES, "train": {**TWO_PUSHES["train"], "seed": 1}}))
    built = []
    monkeypatch.setattr(training, "recipe_data", lambda *a, **k: built.append(1))
    assert train_main(argv) == 2
    assert "holds a stopped training of another recipe" in capsys.readouterr().err
    assert built == []  # the mistake is reported at once, not after minutes of data


def test_a_state_written_by_other_code_is_refused(tmp_path, capsys, monkeypatch):
    import protobench.source as source
    _, out, argv = _stopped_command(tmp_path, monkeypatch, 1)
    monkeypatch.setattr(source, "source_digest", lambda: "an edited trainer")
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert "stopped under other code (source_sha256:" in err and "--fresh" in err
    assert not out.exists() and resume_path(out).is_file()


def test_a_snapshot_is_the_stopped_training_as_a_checkpoint(tmp_path, capsys, monkeypatch):
    from protobench.cli.evaluate import main as evaluate_main
    from protobench.model import load_checkpoint
    path, out, argv = _stopped_command(tmp_path, monkeypatch, 4)  # stopped in joint epoch 3
    state = load_state(resume_path(out), recipe_key(load_recipe(path).raw), code_identity(torch.device("cpu")))
    snapshot = tmp_path / "midway.pt"
    assert train_main(argv + ["--snapshot", str(snapshot)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model = load_checkpoint(snapshot)
    weights = model.net.state_dict()
    assert weights.keys() == state.model.keys()
    assert all(torch.equal(weights[k], v) for k, v in state.model.items())
    history = model.meta.history
    assert history["stopped_before_epoch"] == 3 and len(history["epochs"]) == len(state.history)
    assert model.meta.push_records == state.push_records and len(state.push_records) > 0
    # measured on the snapshot's weights: the state's own is of epoch 1, before joint epoch 2
    data = recipe_data(load_recipe(path))
    assert report["test_accuracy"] == round(trainer.accuracy(model, data.test), 4) == \
        round(history["test_accuracy"], 4)
    assert report["prototypes_on_object"] == history["prototypes_on_object"] is not None
    assert not out.exists() and resume_path(out).is_file()  # the training is left as it was
    assert evaluate_main(["--model", str(snapshot), "--device", "cpu", "--json"]) == 0  # a checkpoint like any
    capsys.readouterr()

    elsewhere = tmp_path / "elsewhere.pt"  # no training toward it
    assert train_main(["--recipe", str(path), "--out", str(elsewhere), "--snapshot", str(tmp_path / "s.pt")]) == 2
    assert "no training of tiny toward" in capsys.readouterr().err and not (tmp_path / "s.pt").exists()
    assert train_main(argv + ["--snapshot", str(out)]) == 2
    assert "is --out" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):
        train_main(argv + ["--snapshot", str(snapshot), "--fresh"])
    assert "--snapshot reads the state that --fresh discards" in capsys.readouterr().err
    assert resume_path(out).is_file()


def test_a_snapshot_reads_a_state_of_other_code(tmp_path, capsys, monkeypatch):
    # resuming needs the code that stopped; reading the weights does not
    import protobench.source as source
    _, out, argv = _stopped_command(tmp_path, monkeypatch, 2)
    monkeypatch.setattr(source, "source_digest", lambda: "an edited trainer")
    assert train_main(argv + ["--snapshot", str(tmp_path / "midway.pt")]) == 0
    assert (tmp_path / "midway.pt").is_file()
    # format 1 (6cada4c's states, without the code identity): read, never resumed
    payload = torch.load(resume_path(out), weights_only=True)
    payload["format"] = 1
    del payload["code"]
    torch.save(payload, resume_path(out))
    assert train_main(argv + ["--snapshot", str(tmp_path / "format1.pt")]) == 0
    assert train_main(argv) == 2 and "format 1, expected 2" in capsys.readouterr().err


def test_a_state_that_is_not_one_is_one_clear_error(tmp_path):
    state = tmp_path / "m.pt.resume"
    state.write_bytes(b"not a torch file")
    with pytest.raises(ProtobenchError, match="not a training state protobench can resume"):
        load_state(state, "key", {})
    torch.save({"format": 99}, state)
    with pytest.raises(ProtobenchError, match="format 99, expected 2"):
        load_state(state, "key", {})
    assert load_state(tmp_path / "absent.resume", "key", {}) is None
