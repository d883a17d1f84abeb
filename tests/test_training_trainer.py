import json

import pytest
import torch

from protobench.cli.train import main as train_main
from protobench.training import recipe_data
from protobench.training.recipe import load_recipe, recipe_from_dict
from protobench.training.trainer import train

TINY = {
    "model": {"backbone": "smallcnn", "img_size": 32, "prototypes_per_class": 2, "prototype_depth": 32},
    "data": {"dataset": "synth", "num_classes": 4, "train_per_class": 40, "test_per_class": 20,
             "object_scale": [0.6, 0.8], "distractors": 1, "seed": 3},
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
    assert trained.test_accuracy >= 0.5  # twice chance (4 classes)
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


def test_train_command_writes_a_loadable_checkpoint(tmp_path, capsys):
    import tomllib  # noqa: F401  (the recipe is written as TOML below)
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
