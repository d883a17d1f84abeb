import json
import time

import pytest
import torch

from protobench.cli.train import main as train_main
from protobench.training import recipe_data
from protobench.training.recipe import check_trainable, load_recipe, recipe_from_dict
from protobench.training.trainer import train

# synth without its within-class variation: these tests are about the trainer, in seconds
PLAIN = {"part_jitter": 0, "colour_jitter": 15, "texture_jitter": 0, "lighting": 0, "blur": 0,
         "occluders": 0, "clutter": 0}
TINY = {
    "model": {"backbone": "smallcnn", "img_size": 32, "prototypes_per_class": 2, "prototype_depth": 32},
    "data": {"dataset": "synth", "num_classes": 4, "train_per_class": 40, "test_per_class": 20,
             "object_scale": [0.6, 0.8], "distractors": 1, "seed": 3, **PLAIN},
    "train": {"seed": 0, "batch_size": 32, "pretrain_epochs": 3, "epochs": 4, "warm_epochs": 1,
              "push_epochs": [3], "last_layer_epochs": 2, "lr": {"features": 1e-3}},
}


SHORT = {**TINY, "train": {**TINY["train"], "pretrain_epochs": 1, "epochs": 2, "push_epochs": [1],
                           "last_layer_epochs": 1}}


def _train(raw=TINY):
    recipe = recipe_from_dict("tiny", raw)
    data = recipe_data(recipe)
    return train(recipe, data.train, data.push, data.test, data.classes, progress=False,
                 log=lambda _: None)


@pytest.fixture(scope="module")
def trained():
    return _train()


def test_few_epochs_beat_chance_by_a_wide_margin(trained):
    assert trained.test_accuracy >= 0.4  # chance 0.25 (4 classes); measured 0.475
    assert len(trained.push_records) == 8
    stages = [h.stage for h in trained.history]
    assert stages == ["pretrain"] * 3 + ["warm"] + ["joint"] * 3 + ["last"] * 2


def test_same_seed_same_weights():
    first, again = _train(SHORT), _train(SHORT)
    for (name, a), b in zip(first.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_recipe_errors_name_the_bad_key(tmp_path):
    from protobench.errors import ProtobenchError
    with pytest.raises(ProtobenchError, match=r"\[train\].*epochz"):
        recipe_from_dict("bad", {"train": {"epochz": 3}})
    with pytest.raises(ProtobenchError, match="unknown model recipe 'nope'"):
        load_recipe("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ProtobenchError, match="not valid TOML"):
        load_recipe(bad)


def test_a_push_the_schedule_never_reaches_is_refused_before_training(tmp_path):
    from protobench.errors import ProtobenchError
    # with 30 epochs (0..29) a push "at 30" would silently never happen, nor its last-layer stage
    path = tmp_path / "late.toml"
    path.write_text("[train]\nepochs = 30\npush_epochs = [10, 20, 30]\n")
    with pytest.raises(ProtobenchError, match=r"late.toml \[train\]: push epoch\(s\) \[30\] would never "
                                              r"come: with epochs = 30 the pushes must lie in 0..29"):
        load_recipe(path)
    short = recipe_from_dict("short", {**TINY, "train": {**TINY["train"], "epochs": 2, "push_epochs": [5]}})
    with pytest.raises(ProtobenchError, match=r"push epoch\(s\) \[5\]"):  # before any data is read
        train(short, None, None, None, ["a", "b"], progress=False)
    with pytest.raises(ProtobenchError, match=r"\[9\] \(the default push_epochs\)"):
        check_trainable(recipe_from_dict("bad", {"train": {"epochs": 5}}))
    with pytest.raises(ProtobenchError, match="push_epochs must be a list of integers"):
        check_trainable(recipe_from_dict("bad", {"train": {"push_epochs": 9}}))
    check_trainable(recipe_from_dict("ok", {"train": {"epochs": 31, "push_epochs": [10, 20, 30]}}))
    # PIP-Net has no push stage; and a stored recipe is still read back (evaluation of old checkpoints)
    check_trainable(recipe_from_dict("pipnet", {"model": {"family": "pipnet"}, "train": {"epochs": 1}}))
    assert recipe_from_dict("old", {"train": {"epochs": 5}}).schedule.epochs == 5


def test_an_unknown_add_on_type_is_a_recipe_error():
    from protobench.errors import ProtobenchError
    with pytest.raises(ProtobenchError, match="unknown add_on_layers_type 'deep'; choose one of: regular"):
        recipe_from_dict("bad", {"model": {"add_on_layers_type": "deep"}})


def test_train_command_writes_a_loadable_checkpoint(tmp_path, capsys):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(_toml(SHORT))
    out = tmp_path / "tiny.pt"
    assert train_main(["--model", str(recipe), "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out.is_file() and report["checkpoint"] == str(out)
    assert (tmp_path / "tiny" / "prototypes" / "prototype-img0.png").is_file()
    from protobench.cli.evaluate import main as evaluate_main
    assert evaluate_main(["--model", str(out), "--json", "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == report["test_accuracy"]
    assert evaluated["prototypes_on_object"] == report["prototypes_on_object"]
    realism = evaluated["realism"]  # the realism report (protobench.evaluation.realism), on the test split
    assert realism["images"] == evaluated["images"]
    assert realism["top1_similarity"]["n"] == evaluated["images"]
    spread = realism["distance_ratio"]
    assert spread["n"] + realism["without_irrelevant_cell"] == evaluated["images"]
    assert spread["q25"] <= spread["median"] <= spread["q75"]
    assert evaluate_main(["--model", str(out), "--device", "cpu"]) == 0
    assert "d(best irrelevant) / d(best)" in capsys.readouterr().out
    # the Python twins give what the commands print
    import protobench
    assert protobench.evaluate_model(out, device="cpu").to_dict() == evaluated
    model = protobench.load(out)
    analysis = protobench.explain_image(model, 1, top_k=2, out=tmp_path / "e.png", device="cpu")
    assert len(analysis.evidence) == 2 and (tmp_path / "e.png").is_file()
    with pytest.raises(protobench.errors.ProtobenchError, match="top_k must be >= 1"):
        protobench.explain_image(model, 1, top_k=0)
    with pytest.raises(protobench.errors.ProtobenchError, match="ending in .png"):
        protobench.explain_image(model, 1, out=tmp_path / "e.jpg")
    assert not (tmp_path / "e.jpg").exists()


def _toml(raw, prefix=""):
    lines, tables = [], []
    for key, value in raw.items():
        if isinstance(value, dict):
            tables.append((f"{prefix}{key}", value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        lines.append(_toml(table, f"{name}."))
    return "\n".join(lines)


def test_cell_targets_label_the_cells_the_object_covers():
    from protobench.training.trainer import cell_targets
    masks = torch.zeros(2, 1, 8, 8)
    masks[0, 0, :4, :4] = 1          # image 0: object fills the top-left cell of a 2x2 grid
    masks[1, 0, 4:, :] = 1           # image 1: object fills the bottom row
    masks[1, 0, :2, :4] = 1          # ... and half of the top-left cell (counts: >= 0.5)
    masks[1, 0, 0, 4:] = 1           # ... and a quarter of the top-right cell (does not)
    targets = cell_targets(masks, torch.tensor([3, 1]), (2, 2), background=5)
    assert targets.tolist() == [[[3, 5], [5, 5]], [[1, 5], [1, 1]]]


def test_cell_pretraining_teaches_cells_what_lies_under_them():
    """Pretraining with the 'cells' head labels training cells (class or
    background) with well under the error of always answering the most
    common label (background: 82% of cells here)."""
    from protobench.training.trainer import cell_targets
    raw = {**TINY, "train": {**TINY["train"], "pretrain_epochs": 3, "pretrain_head": "cells",
                             "epochs": 1, "push_epochs": [0], "last_layer_epochs": 1}}
    result = _train(raw)
    assert [h.stage for h in result.history][:3] == ["pretrain"] * 3
    push = recipe_data(recipe_from_dict("tiny", raw)).push
    masks = torch.stack([push.relevance_mask(i) for i in range(len(push))]).float().unsqueeze(1)
    targets = cell_targets(masks, push.labels, (4, 4), background=4)  # smallcnn: 4x4 cells at 32 px
    majority = torch.bincount(targets.flatten()).max().item() / targets.numel()
    assert 1 - result.history[2].accuracy < 0.6 * (1 - majority)  # measured: 0.074 vs 0.18


def test_cell_pretraining_needs_masks_and_a_known_head():
    from protobench.errors import ProtobenchError
    from protobench.training.trainer import pretrain_backbone
    from protobench.model import Architecture, ProtoPNet
    from torch.utils.data import DataLoader, TensorDataset
    with pytest.raises(ProtobenchError, match="pretrain_head must be one of 'image', 'cells', 'pretext', 'other-classes'"):
        recipe_from_dict("bad", {"train": {"pretrain_head": "pixels"}})
    model = ProtoPNet.build(Architecture(backbone="smallcnn", img_size=32, num_classes=2,
                                         prototypes_per_class=1, prototype_depth=8))
    unmasked = DataLoader(TensorDataset(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 0, 1])), batch_size=2)
    with pytest.raises(ProtobenchError, match="needs object masks"):
        pretrain_backbone(model, unmasked, epochs=1, lr=1e-3, head="cells", progress=False)

    class Cropped(TensorDataset):  # masks that cover every pixel, as cropped images have
        def relevance_mask(self, i):
            return torch.ones(32, 32, dtype=torch.bool)

    cropped = DataLoader(Cropped(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 0, 1])), batch_size=2)
    with pytest.raises(ProtobenchError, match="no background cell"):
        pretrain_backbone(model, cropped, epochs=1, lr=1e-3, head="cells", progress=False)


def test_the_synth_tiny_recipe_trains_well_above_chance(tmp_path, capsys):
    """models/synth-tiny.toml, the recipe for trying the pipeline (4 classes)."""
    out = tmp_path / "tiny.pt"
    assert train_main(["--recipe", "synth-tiny", "--out", str(out), "--quiet", "--device", "cpu",
                       "--no-prototype-images"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["test_accuracy"] > 0.6  # chance 0.25; measured 0.79


def test_train_takes_a_seed_and_any_recipe_value(tmp_path, capsys):
    """--seed replaces [train] seed and names the model NAME-seedS; --set changes any other
    value; the checkpoint records the recipe as trained."""
    import protobench

    out = tmp_path / "tiny.pt"
    short = ["--set", "train.epochs=2", "--set", "train.push_epochs=[1]", "--set", "train.last_layer_epochs=1",
             "--set", "train.pretrain_epochs=1"]
    assert train_main(["--recipe", "synth-tiny", "--seed", "1", *short, "--out", str(out), "--quiet",
                       "--device", "cpu", "--no-prototype-images"]) == 0
    model = protobench.load(out)
    assert model.meta.name == "synth-tiny-seed1" and model.meta.history["device"].startswith("cpu")
    assert model.meta.recipe["train"]["seed"] == 1 and model.meta.recipe["train"]["push_epochs"] == [1]
    from protobench.paths import MODELS_DIR, read_toml
    assert model.meta.recipe["data"] == read_toml(MODELS_DIR / "synth-tiny.toml")["data"]  # the same images
    capsys.readouterr()
    assert train_main(["--recipe", "synth-tiny", "--set", "train.epochs=2", "--quiet"]) == 2
    assert "give --out" in capsys.readouterr().err                     # models/synth-tiny.pt stays its own
    assert train_main(["--recipe", "synth-tiny", "--set", "epochs=2", "--out", str(out)]) == 2
    assert "TABLE.KEY" in capsys.readouterr().err
    assert train_main(["--recipe", "synth-tiny", "--set", "train.epoch=2", "--out", str(tmp_path / "x.pt")]) == 2
    assert "epoch" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()


def test_other_classes_pretraining_reads_no_task_image():
    raw = {**SHORT, "train": {**SHORT["train"], "pretrain_head": "other-classes",
                              "pretrain_classes": 5, "pretrain_images": 60}}
    recipe = recipe_from_dict("tiny", raw)
    data = recipe_data(recipe)
    assert not set(data.pretrain.classes) & set(data.classes)
    assert len(data.pretrain.classes) == 5 and len(data.pretrain) == 60
    assert data.pretrain.dataset.config.seed == TINY["data"]["seed"] + 1
    result = train(recipe, data.train, data.push, data.test, data.classes, progress=False,
                   log=lambda _: None, pretrain_set=data.pretrain)
    assert [h.stage for h in result.history][:1] == ["pretrain"]
    from protobench.errors import ProtobenchError
    with pytest.raises(ProtobenchError, match="needs its pre-training set"):
        train(recipe, data.train, data.push, data.test, data.classes, progress=False, log=lambda _: None)


class RecordsDraws(torch.utils.data.Dataset):
    """A training set that records which augmentation draw each pass over it asked for."""

    def __init__(self, dataset) -> None:
        self.dataset, self.draws = dataset, []

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]

    def set_epoch(self, draw: int) -> None:
        self.draws.append(draw)
        self.dataset.set_epoch(draw)


@pytest.mark.parametrize("family, raw, expected", [
    # warm, joint, push at 1 with 2 last-layer epochs, joint, push at 2 with 2 more
    ("protopnet", {**TINY, "train": {**TINY["train"], "pretrain_epochs": 0, "epochs": 3,
                                     "push_epochs": [1, 2], "last_layer_epochs": 2}},
     [0, 1, 3, 4, 2, 5, 6]),
    # PIP-Net: one prototype epoch, then one classifier-only and one joint epoch
    ("pipnet", {"model": {"family": "pipnet", "backbone": "smallcnn", "img_size": 32,
                          "num_prototypes": 8},
                "data": TINY["data"],
                "train": {"seed": 0, "batch_size": 32, "prototype_epochs": 1, "epochs": 2,
                          "finetune_epochs": 1}},
     [0, 1, 2]),
])
def test_every_pass_over_the_training_data_draws_a_fresh_augmentation(family, raw, expected):
    """The last-layer epochs reused the draw of their push epoch, and PIP-Net never asked
    for one: every epoch saw the same warp of each image."""
    recipe = recipe_from_dict(f"draws-{family}", raw)
    data = recipe_data(recipe)
    recorder = RecordsDraws(data.train)
    train(recipe, recorder, data.push, data.test, data.classes, progress=False, log=lambda _: None)
    assert recorder.draws == expected


def test_family_defaults_of_the_loss_are_the_published_ones():
    """Orthogonality: 1 in ProtoPool's main.py, 1e-4 in TesNet's settings_CUB.py; a recipe's
    own value wins."""
    def orthogonal(model, loss=None):
        raw = {"model": model, "train": {"loss": loss} if loss else {}}
        return recipe_from_dict("r", raw).loss.orthogonal

    assert orthogonal({"family": "tesnet"}) == 1e-4
    assert orthogonal({"family": "protopool", "num_prototypes": 20}) == 1.0
    assert orthogonal({"family": "tesnet"}, {"orthogonal": 0.5}) == 0.5


def test_a_linear_activation_protopnet_has_no_last_layer_stage():
    """The original's main.py trains the last layer alone only for the log activation."""
    from protobench.model import Architecture, ProtoPNet
    from protobench.training.recipe import LearningRates
    from protobench.training.trainer import make_optimizers

    def stages(activation, family="protopnet"):
        arch = Architecture(family=family, img_size=32, num_classes=3, prototypes_per_class=2,
                            prototype_depth=16, prototype_activation_function=activation)
        return sorted(make_optimizers(ProtoPNet.build(arch, classes=["a", "b", "c"]),
                                      LearningRates()))

    assert stages("log") == ["joint", "last", "warm"]
    assert stages("linear") == ["joint", "warm"]
    assert stages("log", "tesnet") == ["joint", "last", "warm"]  # TesNet records "linear"


@pytest.mark.parametrize("train_table, message", [
    ({"epochs": -1, "push_epochs": []}, "epochs=-1 is invalid; allowed: an integer >= 1"),
    ({"epochs": "two"}, "epochs='two' is invalid"),
    ({"epochs": 2.5}, "epochs=2.5 is invalid"),
    ({"batch_size": 0}, "batch_size=0 is invalid"),
    ({"last_layer_epochs": -1}, "last_layer_epochs=-1 is invalid"),
    ({"warm_epochs": 5, "epochs": 4, "push_epochs": [3]}, "warm_epochs = 5 exceeds epochs = 4"),
    ({"lr": {"features": -1e-3}}, r"features=-0.001 is invalid; allowed: a number > 0"),
    ({"lr": {"joint_step_size": 0}}, "joint_step_size=0 is invalid"),
    ({"mixup": -0.5}, "mixup=-0.5 is invalid; allowed: a finite number >= 0"),
    ({"mixup": True}, "mixup=True is invalid"),
])
def test_a_schedule_that_cannot_train_is_one_clear_error_before_any_work(tmp_path, capsys,
                                                                           train_table, message):
    """It used to train nothing and write a checkpoint (epochs = -1), or end in a traceback."""
    raw = {**SHORT, "train": {**SHORT["train"], **train_table}}
    recipe = tmp_path / "bad.toml"
    recipe.write_text(_toml(raw))
    out = tmp_path / "bad.pt"
    assert train_main(["--model", str(recipe), "--out", str(out), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_an_unwritable_checkpoint_path_is_refused_before_training(tmp_path, capsys):
    """Found only after the training, it cost the whole run."""
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(_toml(SHORT))
    (tmp_path / "a-file").write_text("x")
    for out, message in ((tmp_path, "is a folder"), (tmp_path / "a-file" / "x.pt", "is a file, not a folder")):
        start = time.perf_counter()
        assert train_main(["--model", str(recipe), "--out", str(out), "--quiet"]) == 2
        assert message in capsys.readouterr().err
        assert time.perf_counter() - start < 5  # no data generated, nothing trained
