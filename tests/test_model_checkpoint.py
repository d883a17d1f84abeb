from pathlib import Path

import pytest
import torch

import protobench
from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet, load_checkpoint, save_checkpoint


def _model(**arch):
    return ProtoPNet.build(Architecture(**arch), classes=[f"c{i}" for i in range(10)], name="t").eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    model = _model()
    with torch.no_grad():
        model.ppnet.prototype_vectors.uniform_()
    model.meta.push_records = [{"prototype": 0, "image": 3, "cell": [1, 2], "rf_box": [0, 8, 0, 8]}]
    path = save_checkpoint(model, tmp_path / "m.pt")
    loaded = protobench.load(path)
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


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("this is not a checkpoint")
    with pytest.raises(ProtobenchError, match="not a checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(ProtobenchError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ProtobenchError, match="not a protobench or ProtoPNet checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_unknown_model_name_says_how_to_train(tmp_path):
    with pytest.raises(ProtobenchError, match="does not exist"):
        protobench.load("no-such-model")


def test_a_plain_pickle_is_refused_without_torch_advice(tmp_path, recwarn):
    import collections
    import pickle
    path = tmp_path / "counter.pt"
    path.write_bytes(pickle.dumps(collections.Counter("ab")))
    with pytest.raises(ProtobenchError, match="not a checkpoint protobench can read safely") as info:
        protobench.load(path)
    assert "weights_only" not in str(info.value) and not recwarn.list
