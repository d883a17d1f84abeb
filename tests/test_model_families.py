"""The families' registry: every family builds a network that meets the written contract,
and nothing outside a family's folder tests which family a network is."""

import re
from pathlib import Path

import pytest
import torch

from protobench.errors import ProtobenchError
from protobench.model import Architecture, PrototypeClassifier
from protobench.model.families import FAMILIES, PrototypeNetwork, get_family, register_family

PACKAGE = Path(__file__).resolve().parent.parent / "protobench"
SMALL = {"protopnet": {}, "tesnet": {}, "protopool": {"num_prototypes": 8}, "pipnet": {}}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_builds_a_network_that_meets_the_contract(name):
    torch.manual_seed(0)
    arch = Architecture(family=name, backbone="smallcnn", img_size=32, num_classes=3,
                        prototypes_per_class=2, prototype_depth=16, **SMALL.get(name, {}))
    model = PrototypeClassifier.build(arch).eval()
    assert isinstance(model.net, PrototypeNetwork) and model.rules is get_family(name)
    x = torch.rand(2, 3, 32, 32)
    logits, min_distances, maps = model.explain(x)
    assert logits.shape == (2, 3) and maps.shape[:2] == (2, model.num_prototypes)
    attack_maps, again = model.attack_maps_and_logits(x)
    assert attack_maps.shape == maps.shape and torch.allclose(again, logits, atol=1e-5)
    # the strictly increasing map of the similarity: the same peaks
    assert torch.equal(attack_maps.flatten(2).argmax(2), maps.flatten(2).argmax(2))


def test_an_unknown_family_is_named_and_a_second_registration_refused():
    with pytest.raises(ProtobenchError, match="unknown model family 'protonet'; choose one of: protopnet"):
        Architecture(family="protonet")
    with pytest.raises(ValueError, match="registered twice"):
        register_family(get_family("protopnet"))


def test_no_module_outside_the_families_tests_a_networks_class():
    """The trainer, the checkpoints and the metrics ask the family (model.rules)."""
    pattern = re.compile(r"isinstance\([^)]*\b(PPNet|PoolNet|PIPNetwork|TesNetwork)\b|"
                         r"family\s*==\s*\"(protopnet|protopool|pipnet|tesnet)\"")
    found = [f"{path.relative_to(PACKAGE)}:{i}" for path in PACKAGE.rglob("*.py")
             if "families" not in path.parts
             for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []
