"""Hoffmann et al.'s JPEG experiment and the defences as training options."""

import pytest
import torch
import torch.nn.functional as F

from protobench.data import load_dataset
from protobench.data.jpeg_experiment import RandomJpeg
from protobench.errors import ProtobenchError
from protobench.imaging import jpeg_compress
from protobench.model import Architecture, ProtoPNet
from protobench.training.adversarial import fgsm_examples, make_adversary, masked_examples, masked_preset
from protobench.training.recipe import recipe_from_dict

SMALL = dict(num_classes=4, train_per_class=3, test_per_class=2, img_size=32)


@pytest.mark.parametrize("split", ["train", "push", "test"])
def test_jpeg_classes_compress_exactly_the_chosen_classes_in_every_split(split):
    clean = load_dataset("synth", split, **SMALL)
    odd = load_dataset("synth", split, jpeg_classes="odd", jpeg_quality=20, **SMALL)
    assert len(clean) == len(odd) and torch.equal(clean.labels, odd.labels)
    for i in range(len(clean)):
        (x, y), (xj, yj) = clean[i], odd[i]
        assert y == yj
        if y % 2:  # compressed, exactly as the JPEG round trip does it
            assert torch.equal(xj, jpeg_compress(x[None], 20)[0]) and not torch.equal(xj, x)
        else:
            assert torch.equal(xj, x)
        assert torch.equal(odd.relevance_mask(i), clean.relevance_mask(i))
    listed = load_dataset("synth", split, jpeg_classes=[0, 2], **SMALL)
    assert listed.compressed == (0, 2)


def test_the_jpeg_experiment_compresses_before_augmentation():
    data = load_dataset("synth", "train", augment=True, jpeg_classes="odd", **SMALL)
    assert type(data).__name__ == "Augmented" and type(data.dataset).__name__ == "JpegClasses"


def test_jpeg_augmentation_draws_anew_each_epoch_and_about_p_of_the_images():
    base = load_dataset("synth", "train", num_classes=4, train_per_class=50, img_size=32)
    aug = RandomJpeg(base, p=0.5, quality=20, seed=3)
    first = [aug.is_compressed(i) for i in range(len(aug))]
    assert 0.35 < sum(first) / len(first) < 0.65
    aug.set_epoch(1)
    second = [aug.is_compressed(i) for i in range(len(aug))]
    assert first != second
    i = second.index(True)
    assert torch.equal(aug[i][0], jpeg_compress(base[i][0][None], 20)[0])
    assert [RandomJpeg(base, p=0.0).is_compressed(i) for i in range(10)] == [False] * 10


def _model():
    torch.manual_seed(0)
    return ProtoPNet.build(Architecture(backbone="smallcnn", img_size=32, num_classes=2,
                                        prototypes_per_class=2, prototype_depth=8))


def test_an_fgsm_training_step_raises_the_loss_on_its_batch_before_the_update():
    model = _model().train()
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(8, 3, 32, 32, generator=g), torch.tensor([0, 1] * 4)
    before = [p.detach().clone() for p in model.parameters()]
    adversarial = fgsm_examples(model, images, labels, 8 / 255, 10 / 255, torch.Generator().manual_seed(1))
    assert float((adversarial - images).abs().max()) <= 8 / 255 + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    with torch.no_grad():
        model.eval()
        clean_loss = F.cross_entropy(model(images), labels)
        adversarial_loss = F.cross_entropy(model(adversarial), labels)
    assert adversarial_loss > clean_loss
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # no update
    assert all(p.grad is None for p in model.parameters())                     # no gradient left


def test_masked_adversarial_training_changes_only_the_box_and_keeps_the_training_mode():
    model = _model().train()
    images, labels = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 0, 1])
    preset = masked_preset("pgd-local", 8 / 255, steps=3)
    adversarial = masked_examples(model, images, labels, preset, torch.Generator().manual_seed(0))
    assert adversarial.shape == images.shape
    changed = (adversarial != images).any(dim=1)
    assert changed.any() and not changed.all()  # inside the high-activation box only
    assert model.training and model.net.training
    assert make_adversary("", 0.1, 0.1, 0, 0) is None


@pytest.mark.parametrize("train, message", [
    ({"adversarial": "pgd-nowhere"}, "adversarial='pgd-nowhere' is invalid"),
    ({"adversarial": "pgd-global"}, "masked attack preset"),
    ({"adversarial": "fgsm", "adversarial_eps": 2}, "adversarial_eps=2 is invalid"),
    ({"adversarial_steps": -1}, "adversarial_steps=-1 is invalid"),
    ({"jpeg_augment": {"p": 1.5}}, "jpeg_augment p=1.5 is invalid"),
    ({"jpeg_augment": {"quality": 0}}, "JPEG quality 0 is invalid"),
    ({"jpeg_augment": {"q": 20}}, "jpeg_augment: unknown key"),
])
def test_a_bad_defence_in_a_recipe_is_one_clear_error(train, message):
    with pytest.raises(ProtobenchError, match=message):
        recipe_from_dict("bad", {"train": train})


def test_bad_jpeg_classes_are_one_clear_error():
    with pytest.raises(ProtobenchError, match="jpeg_classes=.primes. is invalid"):
        load_dataset("synth", "test", jpeg_classes="primes", **SMALL)
    with pytest.raises(ProtobenchError, match=r"jpeg_classes \[7\] do not exist"):
        load_dataset("synth", "test", jpeg_classes=[7], **SMALL)
    with pytest.raises(ProtobenchError, match="JPEG quality 101"):
        load_dataset("synth", "test", jpeg_classes="odd", jpeg_quality=101, **SMALL)


def test_defences_train_through_the_full_schedule_and_are_recorded_in_the_checkpoint(tmp_path):
    from protobench.training import recipe_data
    from protobench.training.trainer import train

    raw = {"model": {"backbone": "smallcnn", "img_size": 32, "prototypes_per_class": 1,
                     "prototype_depth": 8},
           "data": {"dataset": "synth", "num_classes": 2, "train_per_class": 8, "test_per_class": 4,
                    "jpeg_classes": "odd"},
           "train": {"batch_size": 8, "epochs": 2, "warm_epochs": 1, "push_epochs": [1],
                     "last_layer_epochs": 1, "adversarial": "fgsm",
                     "jpeg_augment": {"p": 0.5, "quality": 30}}}
    recipe = recipe_from_dict("defended", raw)
    data = recipe_data(recipe)
    result = train(recipe, data.train, data.push, data.test, data.classes, progress=False,
                   log=lambda _: None)
    assert [h.stage for h in result.history] == ["warm", "joint", "last"]
    recorded = result.model.meta.recipe
    assert recorded["train"]["adversarial"] == "fgsm"
    assert recorded["train"]["jpeg_augment"] == {"p": 0.5, "quality": 30}
    assert recorded["data"]["jpeg_classes"] == "odd"
    # the paper's evaluation: accuracy per class group on compressed and on clean test images
    from protobench.training import model_data_source
    from protobench.evaluation.quality import jpeg_experiment
    report = jpeg_experiment(result.model, model_data_source(result.model))
    assert report["classes"] == [1] and report["quality"] == 20
    group = report["compressed_classes"]
    assert report["gap"] == round(group["compressed"] - group["clean"], 4)
    assert all(0 <= v <= 1 for g in ("compressed_classes", "other_classes")
               for v in report[g].values())
    import dataclasses
    source = model_data_source(result.model)
    clean = dataclasses.replace(source, options={"num_classes": 2, "train_per_class": 8, "test_per_class": 4})
    assert jpeg_experiment(result.model, clean) is None
    # the paper's figure: the clean test image (not the experiment's compressed one) and its JPEG twin
    from protobench.workflows import explain_jpeg
    clean_test = load_dataset("synth", "test", num_classes=2, train_per_class=8, test_per_class=4,
                              img_size=32)
    odd = int((clean_test.labels == 1).nonzero()[0])  # an image the experiment compresses
    clean_image, compressed_image = explain_jpeg(result.model, odd, quality=20, top_k=1,
                                                 out=tmp_path / "x.png", device="cpu")
    assert (tmp_path / "x.png").is_file() and (tmp_path / "x-jpeg20.png").is_file()
    assert torch.equal(clean_image.image, clean_test[odd][0])
    assert torch.equal(compressed_image.image, jpeg_compress(clean_image.image[None], 20)[0])


def test_each_defence_is_named_by_its_training_options():
    from protobench.figures.defences import defence_name
    assert defence_name({"recipe_train": {}}) == "none"
    fgsm = {"adversarial": "fgsm", "adversarial_eps": 8 / 255, "adversarial_steps": 0}
    assert defence_name({"recipe_train": fgsm}) == "adversarial training (fgsm, eps 8/255)"
    masked = {"adversarial": "pgd-local", "adversarial_eps": 8 / 255, "adversarial_steps": 3,
              "jpeg_augment": {"p": 0.5, "quality": 20}}
    assert defence_name({"recipe_train": masked}) == (
        "adversarial training (pgd-local, 3 steps, eps 8/255); JPEG augmentation (p 0.5, quality 20)")


def test_the_defence_table_rates_the_peak_in_the_target_with_noise_beside_it():
    """Each cell: the attack's "peak in the target" rate (noise control in parentheses); the
    clean peak's share on the background (a property of the model) once, from the first
    attack's control at its smallest eps."""
    import pandas as pd

    from protobench.figures.defences import defence_table

    def row(attack, eps, control, in_target, irrelevant):
        return {"model": "m", "attack": attack, "eps": eps, "control": control,
                "peak_in_target_rate": in_target, "peak_irrelevant_rate": irrelevant}
    summary = pd.DataFrame([row("pgd-local", 4 / 255, False, 0.50, 0.75),
                            row("pgd-local", 4 / 255, True, 0.00, 0.40),
                            row("pgd-local", 8 / 255, False, 0.60, 0.80),
                            row("pgd-local", 8 / 255, True, 0.05, 0.45),
                            row("auto-local", 8 / 255, False, 0.70, 0.70),
                            row("auto-local", 8 / 255, True, 0.00, 0.42)])
    models = {"m": {"accuracy": 0.9, "recipe_train": {}, "jpeg": None}}
    [table] = defence_table(summary, models).to_dict("records")
    assert table["noise: peak in an irrelevant cell (pgd-local 4/255)"] == "40%"
    assert (table["pgd-local 4/255"], table["pgd-local 8/255"], table["auto-local 8/255"]) == (
        "50% (0%)", "60% (5%)", "70% (0%)")


def test_jpeg_flips_account_for_the_jpeg_gap_and_refuse_a_model_without_compression(benchmark_script):
    import protobench
    from protobench.training import model_data_source
    from protobench.evaluation.quality import jpeg_experiment

    jpeg_flips = benchmark_script("jpeg_flips")
    model = protobench.load("synth-jpeg-30")
    found = jpeg_flips.flips(model)
    gap = jpeg_experiment(model, model_data_source(model))["gap"]
    # right only compressed minus right only clean is the accuracy gap, image for image
    net = len(found["only_compressed"]) - len(found["only_clean"])
    assert net / found["images"] == pytest.approx(gap, abs=1e-4)
    assert found["only_compressed"][0] == 7  # the README's JPEG explanation figure
    with pytest.raises(ProtobenchError, match="compresses no class"):
        jpeg_flips.flips(protobench.load("synth-smallcnn"))
