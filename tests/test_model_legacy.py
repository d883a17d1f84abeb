"""Import of checkpoints written by the original ProtoPNet code."""

import os
import sys
from pathlib import Path

import pytest
import torch

import protobench
from protobench.errors import ProtobenchError, UntrustedCheckpointError
from protobench.model.legacy import LegacyAssumptionWarning, infer_backbone

ORIGINAL = Path(__file__).parent / "fixtures" / "original_protopnet"
ORIGINAL_MODULES = ("model", "resnet_features", "vgg_features")


@pytest.fixture
def original():
    """The stand-in original modules, importable only inside the fixture."""
    sys.path.insert(0, str(ORIGINAL))
    import model
    import resnet_features
    import vgg_features
    yield model, resnet_features, vgg_features
    _forget()


def _original_resnet18(original, img_size=64):
    model, resnet_features, _ = original
    features = resnet_features.ResNet_features(resnet_features.BasicBlock, [2, 2, 2, 2])
    ppnet = model.PPNet(features, img_size, (20, 32, 1, 1), [2, 32, 435, 0.5], 4)
    with torch.no_grad():
        ppnet.prototype_vectors.uniform_()
    return ppnet.eval()


def _forget(folder=ORIGINAL, modules=ORIGINAL_MODULES):
    """Make the original classes unimportable, as on a machine without that code."""
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    for name in modules:
        sys.modules.pop(name, None)


def test_whole_module_imports_with_identical_outputs(original, tmp_path):
    ppnet = _original_resnet18(original)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, min_d = ppnet(x)
        _, distances = ppnet.push_forward(x)
    torch.save(ppnet, tmp_path / "100push0.7413.pth")
    _forget()
    model = protobench.load(tmp_path / "100push0.7413.pth")
    assert model.meta.architecture.backbone == "resnet18"
    assert model.img_size == 64
    with torch.no_grad():
        ours_logits, ours_min_d = model.net(x)
        _, ours_distances = model.net.push_forward(x)
    torch.testing.assert_close(ours_logits, logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours_min_d, min_d, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours_distances, distances, rtol=0, atol=1e-5)
    # pixel space: the wrapper normalises as ProtoPNet's training did
    torch.testing.assert_close(model(x * model.std + model.mean), logits, rtol=1e-4, atol=1e-4)


def test_state_dict_imports_with_identical_outputs(original, tmp_path):
    _, _, vgg_features = original
    model_mod = original[0]
    ppnet = model_mod.PPNet(vgg_features.VGG_features(), 32, (8, 16, 1, 1), [1, 32, 188, 16], 2,
                            add_on_layers_type="bottleneck").eval()
    torch.save(ppnet.state_dict(), tmp_path / "vgg11.pth")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ppnet(x)
    model = protobench.load(tmp_path / "vgg11.pth", img_size=32, activation="log")
    assert model.meta.architecture.backbone == "vgg11"
    with torch.no_grad():
        got = model.net(x)
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(got[1], expected[1], rtol=0, atol=1e-5)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/protobench-pwned",))


def test_disallowed_global_is_refused_and_nothing_runs(tmp_path):
    marker = Path("/tmp/protobench-pwned")
    marker.unlink(missing_ok=True)
    torch.save({"prototype_vectors": torch.zeros(1), "payload": _Exploit()}, tmp_path / "evil.pth")
    with pytest.raises(UntrustedCheckpointError, match=r"system.*nothing in it was run"):
        protobench.load(tmp_path / "evil.pth")
    assert not marker.exists()


def test_pickle_of_unknown_class_is_refused(tmp_path):
    torch.save(torch.nn.LSTM(2, 2), tmp_path / "lstm.pth")
    with pytest.raises(UntrustedCheckpointError, match="LSTM"):
        protobench.load(tmp_path / "lstm.pth")


@pytest.mark.parametrize("name", ["resnet34", "resnet50", "vgg16_bn", "densenet121"])
def test_backbone_inferred_from_state_dict_keys(name):
    from protobench.model import Architecture, ProtoPNet
    state = ProtoPNet.build(Architecture(backbone=name, img_size=32, num_classes=2,
                                         prototypes_per_class=1, prototype_depth=8)).net.state_dict()
    assert infer_backbone(state) == name


def test_convert_command(original, tmp_path):
    from protobench.cli.convert import main
    ppnet = _original_resnet18(original)
    torch.save(ppnet, tmp_path / "old.pth")
    assert main([str(tmp_path / "old.pth"), str(tmp_path / "new.pt")]) == 0
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(protobench.load(tmp_path / "new.pt").net(x)[0], ppnet(x)[0],
                                   rtol=0, atol=1e-5)
    assert main([str(tmp_path / "missing.pth"), str(tmp_path / "x.pt")]) == 2
    assert not (tmp_path / "x.pt").exists()


def test_a_linear_state_dict_needs_its_activation_and_says_what_it_assumed(original, tmp_path):
    """A state_dict cannot tell the activation: told, the logits are identical;
    not told, it is read as "log" with one clear warning (and other logits)."""
    from protobench.errors import ProtobenchError
    from protobench.model.legacy import LegacyAssumptionWarning

    _, _, vgg_features = original
    ppnet = original[0].PPNet(vgg_features.VGG_features(), 32, (8, 16, 1, 1), [1, 32, 188, 16], 2,
                              prototype_activation_function="linear",
                              add_on_layers_type="bottleneck").eval()
    torch.save(ppnet.state_dict(), tmp_path / "linear.pth")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ppnet(x)[0]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # told everything: no warning at all
        told = protobench.load(tmp_path / "linear.pth", img_size=32, activation="linear")
    assert told.meta.architecture.prototype_activation_function == "linear"
    with torch.no_grad():
        torch.testing.assert_close(told.net(x)[0], expected, rtol=0, atol=1e-5)
    with pytest.warns(LegacyAssumptionWarning, match="assumed prototype activation 'log'"):
        assumed = protobench.load(tmp_path / "linear.pth", img_size=32)
    with torch.no_grad():
        assert not torch.allclose(assumed.net(x)[0], expected, atol=1e-3)
    with pytest.raises(ProtobenchError, match="activation='tanh'"):
        protobench.load(tmp_path / "linear.pth", img_size=32, activation="tanh")


def test_a_whole_module_records_its_activation_and_a_contradiction_is_refused(original, tmp_path):
    from protobench.errors import ProtobenchError

    ppnet = _original_resnet18(original)
    torch.save(ppnet, tmp_path / "whole.pth")
    _forget()
    with pytest.raises(ProtobenchError, match="records prototype activation 'log', not 'linear'"):
        protobench.load(tmp_path / "whole.pth", activation="linear")


# ------------------------------------------------------------------ TesNet
TESNET = Path(__file__).parent / "fixtures" / "original_tesnet"
TESNET_MODULES = ("model", "models", "models.resnet_features")


@pytest.fixture
def original_tesnet():
    """The stand-in TesNet modules (its ``model`` and ``models`` package), importable only
    inside the fixture."""
    sys.path.insert(0, str(TESNET))
    import model
    from models import resnet_features
    features = resnet_features.ResNet_features(resnet_features.BasicBlock, [2, 2, 2, 2])
    torch.manual_seed(0)
    tesnet = model.TESNet(features, 64, (8, 16, 1, 1), [2, 32, 435, 0.5], 4)
    with torch.no_grad():
        tesnet.prototype_vectors.uniform_()
    yield tesnet.eval()
    _forget(TESNET, TESNET_MODULES)


def _tesnet_outputs(net, x):
    with torch.no_grad():
        logits, cosine_min = net(x)
        _, minus_projection = net.push_forward(x)
    return logits, cosine_min, minus_projection


def test_tesnet_whole_module_imports_with_identical_outputs(original_tesnet, tmp_path):
    x = torch.randn(2, 3, 64, 64)
    expected = _tesnet_outputs(original_tesnet, x)
    torch.save(original_tesnet, tmp_path / "10nopush0.8123.pth")
    _forget(TESNET, TESNET_MODULES)
    model = protobench.load(tmp_path / "10nopush0.8123.pth")
    arch = model.meta.architecture
    assert (arch.family, arch.backbone, arch.img_size, arch.prototypes_per_class) == ("tesnet", "resnet18", 64, 2)
    for got, want in zip(_tesnet_outputs(model.net, x), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # what the attacks read: the projection onto each unit basis vector
    with torch.no_grad():
        maps = model.similarity_maps(x * model.std + model.mean)
    torch.testing.assert_close(maps, -expected[2], rtol=1e-4, atol=1e-4)


def test_a_tesnet_state_dict_needs_its_family_and_a_contradiction_is_refused(original_tesnet, tmp_path):
    x = torch.randn(2, 3, 64, 64)
    expected = _tesnet_outputs(original_tesnet, x)
    torch.save(original_tesnet.state_dict(), tmp_path / "state.pth")
    model = protobench.load(tmp_path / "state.pth", img_size=64, family="tesnet")
    for got, want in zip(_tesnet_outputs(model.net, x), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # the same tensors read as a ProtoPNet (the default) are another model: L2 distances
    with pytest.warns(LegacyAssumptionWarning, match="activation 'log'"):
        as_protopnet = protobench.load(tmp_path / "state.pth", img_size=64)
    assert as_protopnet.meta.architecture.family == "protopnet"
    with torch.no_grad():
        assert not torch.allclose(as_protopnet.net(x)[0], expected[0], atol=1e-3)
    torch.save(original_tesnet, tmp_path / "whole.pth")
    with pytest.raises(ProtobenchError, match="is a tesnet checkpoint, not protopnet"):
        protobench.load(tmp_path / "whole.pth", family="protopnet")
    with pytest.raises(ProtobenchError, match="a tesnet model has no prototype activation"):
        protobench.load(tmp_path / "state.pth", img_size=64, family="tesnet", activation="log")
    with pytest.raises(ProtobenchError, match="cannot be given to an import"):
        protobench.load(tmp_path / "state.pth", family="pipnet")
