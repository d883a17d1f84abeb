"""Images streamed in batches: the same pairs and numbers as a split held in memory."""

import json

import pandas as pd
import pytest
import torch

from protobench.attacks import AttackPreset, select_pairs
from protobench.attacks.pairs import tensor_fields
from protobench.attacks.regions import pixel_mask
from protobench.bench import streaming
from protobench.bench.streaming import cut, image_batches, select_streamed
from protobench.cli.run import main
from protobench.data import load_dataset
from protobench.model import Architecture, ProtoPNet
from protobench.paths import MODELS_DIR


@pytest.fixture(scope="module")
def data():
    return load_dataset("synth", "test", img_size=32, num_classes=3, train_per_class=2,
                        test_per_class=3, seed=5)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    arch = Architecture(img_size=32, num_classes=3, prototypes_per_class=2, prototype_depth=16)
    return ProtoPNet.build(arch, name="tiny").eval()


@pytest.mark.parametrize("workers", [0, 2])
def test_image_batches_read_the_asked_images_in_the_asked_order(data, workers):
    ranges = [range(4, 7), range(0, 2), range(8, 9), range(2, 4)]
    batches = list(image_batches(data, ranges, torch.device("cpu"), workers, relevance=True))
    assert [b.first for b in batches] == [4, 0, 8, 2]
    for r, b in zip(ranges, batches):
        assert torch.equal(b.images, torch.stack([data[i][0] for i in r]))
        assert b.labels.tolist() == [data[i][1] for i in r]
        assert all(torch.equal(m, data.relevance_mask(i)) for i, m in zip(r, b.relevance))


def test_pairs_selected_batch_by_batch_are_the_pairs_of_the_whole_set(data, model):
    indices = range(1, 8)
    presets = [AttackPreset(k=2), AttackPreset(k=1, target="farthest")]
    streamed = select_streamed(model, data, indices, presets, 3, torch.device("cpu"))
    images = torch.stack([data[i][0] for i in indices])
    labels = torch.tensor([data[i][1] for i in indices])
    relevance = [data.relevance_mask(i) for i in indices]
    for preset, got in zip(presets, streamed):
        whole = select_pairs(model, images, labels, relevance, preset)
        assert len(got) == len(whole) == len(indices) * preset.k
        for name in ("image_index", "prototype", "label", "box", "high_activation", "irrelevant",
                     "target", "mask", "has_relevance"):
            assert torch.equal(getattr(got, name), getattr(whole, name)), name
        torch.testing.assert_close(got.sim_before, whole.sim_before, rtol=1e-5, atol=1e-5)



@pytest.mark.parametrize("mask", ["high-activation", "target"])
def test_kept_pairs_hold_no_pixel_mask_and_give_the_same_one(data, model, mask):
    """A sweep keeps every pair of a model: nothing per pair may be image-sized (full CUB:
    1.5 GB per model and attack); the mask is recomputed, bit for bit."""
    preset = AttackPreset(k=2, mask=mask, target="farthest")
    [kept] = select_streamed(model, data, range(0, 6), [preset], 4, torch.device("cpu"))
    h, w = data[0][0].shape[-2:]
    for name in tensor_fields():
        assert getattr(kept, name)[0].numel() < h * w, name
    assert kept.mask.shape == (12, 1, h, w)
    images = torch.stack([data[i][0] for i in range(6)])
    labels = torch.tensor([data[i][1] for i in range(6)])
    whole = select_pairs(model, images, labels, [data.relevance_mask(i) for i in range(6)], preset)
    expected = pixel_mask(mask, (h, w), whole.box, whole.target)
    assert torch.equal(kept.mask, expected) and torch.equal(kept[3:5].mask, expected[3:5])
    assert kept.mask[:, 0].flatten(1).any(dim=1).all()

def test_cut_covers_the_range_in_order():
    assert cut(range(3, 10), 3) == [range(3, 6), range(6, 9), range(9, 10)]
    assert cut(range(0), 4) == []


needs_model = pytest.mark.skipif(not (MODELS_DIR / "synth-smallcnn.pt").exists(),
                                 reason="needs the committed default model")
TINY = ["--model", "synth-smallcnn", "--eps", "8/255", "--steps", "2", "--limit", "5",
        "--quiet", "--no-figures"]


@needs_model
def test_a_run_never_reads_more_images_at_once_than_a_batch_and_workers_change_nothing(
        tmp_path, monkeypatch):
    read = []
    original = streaming.image_batches

    def recording(data, batches, *args, **kwargs):
        for batch in original(data, batches, *args, **kwargs):
            read.append(len(batch.images))
            yield batch

    monkeypatch.setattr("protobench.bench.execute.image_batches", recording)
    monkeypatch.setattr(streaming, "image_batches", recording)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main([*TINY, "--batch-size", "2", "--out", str(a)]) == 0
    # selection: 2 + 2 + 1 images; then each unit (2 + 2 + 1 pairs, top-1: one per image),
    # for the attack and for the noise control
    assert read == [2, 2, 1] + [2, 2, 1] * 2
    assert main([*TINY, "--batch-size", "2", "--workers", "2", "--out", str(b)]) == 0
    first, second = (pd.read_csv(d / "pairs.csv").drop(columns="seconds") for d in (a, b))
    pd.testing.assert_frame_equal(first, second)
    assert json.loads((b / "run.json").read_text())["data_workers"] == 2


def test_a_negative_number_of_workers_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([*TINY, "--workers", "-1", "--out", str(tmp_path / "run")])
    assert "--workers" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@needs_model
def test_streamed_units_attack_the_split_images_they_name(tmp_path):
    """Past first_image and over several units, every stored panel image is the split's
    image of its index (an offset error would attack, and store, another image)."""
    import protobench
    from protobench.bench.records import AttackPanel
    from protobench.training import model_split

    out = tmp_path / "run"
    assert main([*TINY, "--first-image", "7", "--batch-size", "2", "--out", str(out)]) == 0
    pairs = pd.read_csv(out / "pairs.csv")
    assert sorted(set(pairs["image"])) == [7, 8, 9, 10, 11]
    model = protobench.load("synth-smallcnn")
    _, data = model_split(model, "test", None, None, "synth-smallcnn")
    panels = list((out / "parts").glob("*.npz"))
    assert panels
    for path in panels:
        if path.name.startswith("local-"):
            continue
        panel = AttackPanel.load(path)
        assert len(panel) == 4  # the suite's panels, from two units of two pairs
        for image, x in zip(panel.image, panel.x):
            assert torch.equal(torch.from_numpy(x), data[int(image)][0])


def test_a_selection_error_says_where_its_image_numbers_start(data, model, monkeypatch):
    from protobench.errors import ProtobenchError

    calls = []

    def failing(model, images, *args):
        calls.append(len(images))
        if len(calls) == 2:
            raise ProtobenchError("no cell for the (image, prototype) pair(s) [(1, 4)]")
        return select_pairs(model, images, *args)

    monkeypatch.setattr(streaming, "select_pairs", failing)
    with pytest.raises(ProtobenchError, match=r"\[\(1, 4\)\] \(images numbered from image 5 "):
        select_streamed(model, data, range(2, 9), [AttackPreset(k=1)], 3, torch.device("cpu"))
