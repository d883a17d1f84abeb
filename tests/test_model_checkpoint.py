import os
import re
from pathlib import Path

import pytest
import torch

import protobench
from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet, load_checkpoint, save_checkpoint


def _model(**arch):
    return ProtoPNet.build(Architecture(**arch), classes=[f"c{i}" for i in range(10)], name="t").eval()


FAMILY_OPTIONS = {"protopnet": {}, "tesnet": {},
                  "protopool": dict(num_prototypes=12, prototypes_per_class=2, prototype_depth=16),
                  "pipnet": {}}


@pytest.mark.parametrize("family", list(FAMILY_OPTIONS))
def test_round_trip_gives_identical_outputs(tmp_path, family):
    model = _model(family=family, **FAMILY_OPTIONS[family])
    assert model.family == family
    if family != "pipnet":  # PIP-Net's prototypes are its backbone's channels
        with torch.no_grad():
            model.net.prototype_vectors.uniform_()
    model.meta.push_records = [{"prototype": 0, "image": 3, "cell": [1, 2], "rf_box": [0, 8, 0, 8]}]
    path = save_checkpoint(model, tmp_path / "m.pt")
    loaded = protobench.load(path)
    assert type(loaded) is type(model)
    x = torch.rand(3, 3, 64, 64)
    assert torch.equal(model(x), loaded(x))
    assert torch.equal(model.similarity_maps(x), loaded.similarity_maps(x))
    assert loaded.meta.classes == model.meta.classes
    assert loaded.meta.push_records == model.meta.push_records
    assert loaded.meta.architecture == model.meta.architecture
    assert not loaded.training


def test_checkpoint_is_plain_data(tmp_path):
    path = save_checkpoint(_model(), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)  # would raise on any pickled object
    assert payload["format"] == "protobench-checkpoint"


@pytest.mark.faults
def test_save_leaves_no_partial_file_on_failure(tmp_path, monkeypatch):
    def broken_save(obj, f):
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(ProtobenchError, match=r"cannot write .*m\.pt: disk full"):
        save_checkpoint(_model(), tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_wrong_shape_is_a_clear_error(tmp_path):
    path = save_checkpoint(_model(), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["meta"]["architecture"]["prototype_depth"] = 64
    torch.save(payload, path)
    with pytest.raises(ProtobenchError, match=r"wrong shape: .*prototype_vectors"):
        load_checkpoint(path)


@pytest.mark.faults
def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("this is not a checkpoint")
    with pytest.raises(ProtobenchError, match="not a PyTorch checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(ProtobenchError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ProtobenchError, match="not a protobench, ProtoPNet, TesNet or ProtoPool checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_device_is_resolved_as_the_commands_do(tmp_path):
    path = save_checkpoint(_model(), tmp_path / "m.pt")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert protobench.load(path, device="auto").device.type == expected
    with pytest.raises(ProtobenchError, match="unknown device 'gpu'"):
        protobench.load(path, device="gpu")


def test_unknown_model_name_says_how_to_train(tmp_path):
    with pytest.raises(ProtobenchError, match="does not exist"):
        protobench.load("no-such-model")


@pytest.mark.faults
def test_a_plain_pickle_is_refused_without_torch_advice(tmp_path, recwarn):
    import collections
    import pickle
    path = tmp_path / "counter.pt"
    path.write_bytes(pickle.dumps(collections.Counter("ab")))
    with pytest.raises(ProtobenchError, match="not a checkpoint protobench can read safely") as info:
        protobench.load(path)
    assert "weights_only" not in str(info.value) and not recwarn.list


@pytest.mark.faults
def test_a_file_torch_save_cannot_have_written_is_named_for_what_it_is(tmp_path):
    """A recipe, an empty file or a truncated checkpoint: not "Python objects that a
    weights-only load refuses"."""
    from protobench.paths import MODELS_DIR
    recipe = tmp_path / "tiny.toml"
    recipe.write_text((MODELS_DIR / "synth-tiny.toml").read_text())
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.pt"
    model = ProtoPNet.build(Architecture(img_size=32, num_classes=2, prototypes_per_class=1,
                                         prototype_depth=8))
    save_checkpoint(model, tmp_path / "whole.pt")
    cut.write_bytes((tmp_path / "whole.pt").read_bytes()[:1000])
    for path, message in ((recipe, "it is a model recipe (TOML); train it first"),
                          (empty, "it is empty"), (cut, "neither a zip archive nor a pickle")):
        with pytest.raises(ProtobenchError, match=re.escape(message)):
            protobench.load(path)


USER_BACKBONE = '''
import torch.nn as nn
from protobench.model.backbones import BACKBONES, sequential_conv_info


class TinyNet(nn.Module):
    out_channels = 8

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, x):
        return self.features(x)

    def conv_info(self):
        return sequential_conv_info(self.features)


@BACKBONES.register("tinynet")
def tinynet(pretrained=False):
    return TinyNet()
'''


def test_a_user_backbone_checkpoint_loads_in_a_fresh_process(tmp_path):
    """The checkpoint records the module that registered the backbone; a fresh
    process that never imported it loads the model with identical outputs. A
    recipe may also name a factory as "module:function"."""
    import subprocess
    import sys

    (tmp_path / "my_backbones.py").write_text(USER_BACKBONE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    save = ("import torch, my_backbones; from protobench.model import Architecture, ProtoPNet, save_checkpoint; "
            "torch.manual_seed(0); "
            "m = ProtoPNet.build(Architecture(backbone='tinynet', img_size=16, num_classes=2, "
            "prototypes_per_class=2, prototype_depth=4)).eval(); "
            f"save_checkpoint(m, r'{tmp_path / 'user.pt'}'); "
            f"torch.save(m(torch.ones(1, 3, 16, 16)), r'{tmp_path / 'logits.pt'}')")
    load = ("import sys, torch, protobench; "
            f"m = protobench.load(r'{tmp_path / 'user.pt'}'); "
            "assert 'my_backbones' in sys.modules; "
            f"assert torch.equal(m(torch.ones(1, 3, 16, 16)), torch.load(r'{tmp_path / 'logits.pt'}')); "
            "assert m.rf_info[2] == 6, m.rf_info; "
            "from protobench.model import Architecture, ProtoPNet; "
            "ProtoPNet.build(Architecture(backbone='my_backbones:tinynet', img_size=16, "
            "num_classes=2, prototypes_per_class=2, prototype_depth=4))")
    for code in (save, load):
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    env_without = {**os.environ}
    done = subprocess.run([sys.executable, "-c", f"import protobench; protobench.load(r'{tmp_path / 'user.pt'}')"],
                          env=env_without, capture_output=True, text=True)
    assert "registered in module 'my_backbones', which cannot be imported" in done.stderr
