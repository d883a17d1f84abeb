import pytest
import torch

from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet
from protobench.training.pretext import (
    NUM_COLOURS, NUM_KINDS, PretextScenes, cell_labels, pretext_scenes,
)
from protobench.training.recipe import recipe_from_dict
from protobench.training.trainer import pretrain_backbone, pretrain_pretext


def _model():
    return ProtoPNet.build(Architecture(backbone="smallcnn", img_size=32, num_classes=2,
                                        prototypes_per_class=1, prototype_depth=8))


def test_cell_labels_take_the_label_covering_most_of_each_block():
    labels = torch.zeros(1, 4, 4, dtype=torch.uint8)
    labels[0, :2, :2] = 3            # top-left block: all 3
    labels[0, 0, 2:] = 5             # top-right block: half 5, half 0 (ties: the lower label)
    labels[0, 2:, 2:] = 7
    labels[0, 3, 3] = 1              # bottom-right block: three 7s, one 1
    assert cell_labels(labels, (2, 2), 8).tolist() == [[[3, 0], [0, 7]]]


def test_scenes_are_deterministic_and_labelled():
    images, kinds, colours = pretext_scenes(6, 32, 0)
    pretext_scenes.cache_clear()
    again = pretext_scenes(6, 32, 0)
    assert torch.equal(images, again[0]) and torch.equal(kinds, again[1])
    assert not torch.equal(images, pretext_scenes(6, 32, 1)[0])
    assert images.shape == (6, 3, 32, 32) and images.dtype == torch.uint8
    assert int(kinds.max()) < NUM_KINDS and int(colours.max()) < NUM_COLOURS
    assert ((kinds > 0) == (colours > 0)).all()  # a shape has a kind and a colour
    assert 0.1 < (kinds > 0).float().mean() < 0.9
    ds = PretextScenes(6, 32, (4, 4))
    x, k, c = ds[0]
    assert x.shape == (3, 32, 32) and k.shape == (4, 4) and c.shape == (4, 4)


def test_pretext_pretraining_trains_the_backbone_and_reads_no_task_data(monkeypatch):
    from protobench.data.synth import SynthDataset

    def forbidden(*args, **kwargs):
        raise AssertionError("the pretext task read the benchmark's data set")
    for name in ("__getitem__", "relevance_mask", "part_masks"):
        monkeypatch.setattr(SynthDataset, name, forbidden)
    model = _model()
    before = [p.clone() for p in model.net.features.parameters()]
    other = [p.clone() for p in model.net.add_on_layers.parameters()]
    history = pretrain_pretext(model, epochs=2, lr=1e-3, images=16, batch_size=8, seed=0, progress=False)
    assert [h.stage for h in history] == ["pretext", "pretext"]
    assert all(0.0 <= h.accuracy <= 1.0 and h.loss > 0 for h in history)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.net.features.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(other, model.net.add_on_layers.parameters()))


def test_pretext_pretraining_is_seeded():
    first, second = _model(), _model()
    second.load_state_dict(first.state_dict())
    for m in (first, second):
        torch.manual_seed(0)
        pretrain_pretext(m, epochs=1, lr=1e-3, images=8, batch_size=4, seed=3, progress=False)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("train, match", [
    ({"pretrain_head": "imagenet"}, "pretrain_head must be one of 'image', 'cells', 'pretext', 'other-classes'"),
    ({"pretrain_head": "pretext", "pretrain_images": 0}, "pretrain_images=0"),
    ({"pretrain_images": 2.5}, "pretrain_images=2.5"),
    ({"pretrain_epochs": -1}, "pretrain_epochs=-1"),
])
def test_bad_pretext_options_are_user_errors(train, match):
    with pytest.raises(ProtobenchError, match=match):
        recipe_from_dict("bad", {"train": train})


def test_pretext_head_is_not_a_loader_head():
    from torch.utils.data import DataLoader, TensorDataset
    loader = DataLoader(TensorDataset(torch.rand(2, 3, 32, 32), torch.tensor([0, 1])))
    with pytest.raises(ProtobenchError, match="pretrain_pretext"):
        pretrain_backbone(_model(), loader, epochs=1, lr=1e-3, head="pretext", progress=False)
    with pytest.raises(ProtobenchError, match="pretrain_images"):
        pretrain_pretext(_model(), epochs=1, lr=1e-3, images=0, batch_size=4, seed=0, progress=False)
