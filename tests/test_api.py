"""The library face: the one-call attack, the torchattacks-style class, the
PrototypeModel protocol with a foreign model, and the objective registry."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import protobench
from protobench.attacks import objectives as objectives_module
from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ProtoPNet.build(Architecture(backbone="smallcnn", img_size=32, num_classes=2,
                                        prototypes_per_class=3, prototype_depth=16)).eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(4, 3, 32, 32, generator=g)
    labels = torch.tensor([0, 1, 0, 1])
    relevance = torch.zeros(4, 32, 32, dtype=torch.bool)
    relevance[:, 8:24, 8:24] = True
    return images, labels, relevance


class ForeignPrototypeNet(nn.Module):
    """A prototype classifier that is not protobench's: conv features, cosine
    similarity to 4 prototypes per cell, a linear layer on the max-pooled similarities."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1))
        self.prototypes = nn.Parameter(torch.randn(4, 8))
        self.head = nn.Linear(4, 2)
        self.classes = torch.tensor([0, 0, 1, 1])

    def cosine_maps(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.features(x), dim=1)
        return torch.einsum("bchw,pc->bphw", z, F.normalize(self.prototypes, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cosine_maps(x).flatten(2).amax(dim=2))


def test_one_call_attack_reports_every_metric_per_pair(model, batch):
    images, labels, relevance = batch
    report = protobench.attack(model, images, labels, "pgd-local", relevance, steps=5, k=2)
    assert len(report) == 8 and report.x_adv.shape == (8, 3, 32, 32)
    assert report.pairs.image_index.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert bool(report.metrics.outside_unchanged.all())
    assert float(report.metrics.linf.max()) <= 8 / 255 + 1e-6
    rates = report.rates()
    assert set(rates) >= {"peak_moved", "out_of_box", "peak_irrelevant", "peak_in_target", "pred_kept"}
    frame = report.to_frame()
    assert list(frame.columns[:3]) == ["image", "prototype", "label"] and len(frame) == 8
    assert "peak_moved_rate" in report.summary()
    assert "pgd-local" in repr(report)
    with pytest.raises(ProtobenchError, match="no noise control"):
        report.rates(control=True)


def test_the_class_is_the_call(model, batch):
    images, labels, relevance = batch
    report = protobench.attack(model, images, labels, "pgd-local", relevance, steps=3, seed=5)
    atk = protobench.LocalPGD(model, steps=3, seed=5)
    again = atk(images, labels, relevance)
    assert torch.equal(report.x_adv, again.x_adv)
    assert atk.preset.name == "pgd-local" and "LocalPGD" in repr(atk)


def test_control_is_measured_on_the_same_pairs(model, batch):
    images, labels, relevance = batch
    report = protobench.attack(model, images, labels, "pgd-local", relevance, steps=2, control=True)
    assert len(report.control.sim_after) == len(report)
    assert set(report.rates(control=True)) == set(report.rates())


def test_bad_calls_get_one_clear_error(model, batch):
    images, labels, _ = batch
    with pytest.raises(ProtobenchError, match="attack options: unknown key\\(s\\) 'epz'"):
        protobench.attack(model, images, labels, "pgd-local", epz=0.1)
    with pytest.raises(ProtobenchError, match="one per image"):
        protobench.attack(model, images, labels[:3], "pgd-local")
    with pytest.raises(ProtobenchError, match="qualities"):
        protobench.attack(model, images, labels, "jpeg")
    with pytest.raises(ProtobenchError, match="PrototypeAdapter"):
        protobench.attack(nn.Linear(3, 2), images, labels, "pgd-local")


def test_a_foreign_model_through_the_adapter(batch):
    images, labels, relevance = batch
    net = ForeignPrototypeNet().eval()
    wrapped = protobench.PrototypeAdapter(net, similarity_maps=net.cosine_maps,
                                          prototype_class=net.classes, img_size=32)
    assert isinstance(wrapped, protobench.PrototypeModel)
    report = protobench.attack(wrapped, images, labels, "pgd-local", relevance, steps=10)
    assert len(report) == 4 and bool(report.metrics.outside_unchanged.all())
    # the attack works on it: the prototype's similarity drops inside R
    assert float((report.metrics.sim_R_after - report.metrics.sim_R_before).mean()) < 0
    # a similarity function of the wrong shape is named at once
    with pytest.raises(ProtobenchError, match=r"\(B, P, h, w\)"):
        protobench.PrototypeAdapter(net, similarity_maps=lambda x: net.cosine_maps(x)[:, :3],
                                    prototype_class=net.classes, img_size=32).similarity_maps(images)


def test_the_adapter_around_a_protopnet_changes_nothing(model, batch):
    images, labels, relevance = batch
    wrapped = protobench.PrototypeAdapter(model, similarity_maps=model.similarity_maps,
                                          prototype_class=model.prototype_class, img_size=32)
    direct = protobench.attack(model, images, labels, "pgd-local", relevance, steps=4)
    through = protobench.attack(wrapped, images, labels, "pgd-local", relevance, steps=4)
    assert torch.allclose(direct.x_adv, through.x_adv, atol=1e-6)
    assert torch.equal(direct.metrics.peak_moved, through.metrics.peak_moved)


def test_a_new_objective_is_one_decorated_function(model, batch):
    images, labels, relevance = batch

    @protobench.map_objective("test-peak-to-target", uses_target=True, criterion="in-target")
    def peak_to_target(sim, source, target):
        return objectives_module.masked_max(sim, target) - objectives_module.masked_max(sim, source)

    try:
        preset = protobench.load_attack("pgd-local", objective="test-peak-to-target")
        assert preset.needs_target and preset.success_criterion == "in-target"
        report = protobench.attack(model, images, labels, preset, relevance, steps=3)
        assert len(report) == 4
        with pytest.raises(ValueError, match="twice"):
            protobench.map_objective("test-peak-to-target", uses_target=True)(peak_to_target)
    finally:
        objectives_module.MAP_OBJECTIVES.pop("test-peak-to-target")
    with pytest.raises(ProtobenchError, match="unknown objective 'test-peak-to-target'"):
        protobench.load_attack("pgd-local", objective="test-peak-to-target")


def test_run_is_the_command_module_and_benchmark_the_function():
    import protobench.run  # noqa: F401  (after this import the attribute must not change)
    assert protobench.run.__name__ == "protobench.run"
    assert callable(protobench.benchmark) and protobench.benchmark.__name__ == "benchmark"


def test_imports_have_no_side_effects():
    """Reading suites pulls in no torchattacks; figures leave the user's matplotlib backend alone."""
    import subprocess
    import sys

    code = ("import sys, matplotlib; matplotlib.use('svg'); "
            "import protobench.bench.suite, protobench.attacks; "
            "assert 'torchattacks' not in sys.modules, 'torchattacks imported'; "
            "import protobench.figures; import protobench.figures.explanations; "
            "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend(); "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
