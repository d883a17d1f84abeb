"""docs/design.md's worked examples run as written: a new model family, attack kind and
target rule are each one file's code plus a registration, and work through the public API."""

import re
from pathlib import Path

import pytest

DESIGN = Path(__file__).resolve().parent.parent / "docs" / "design.md"


def _example(section: str) -> str:
    text = DESIGN.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", body, re.S)
    assert len(blocks) == 1, f"{section}: one python example, found {len(blocks)}"
    return blocks[0]


@pytest.fixture
def registries():
    """Whatever an example registers is removed afterwards."""
    from protobench.attacks.kinds import ATTACK_KINDS
    from protobench.attacks.targets import TARGET_RULES
    from protobench.metrics.criteria import CRITERIA, RATES
    from protobench.model.families import FAMILIES

    before = {id(r): dict(r) for r in (ATTACK_KINDS, TARGET_RULES, FAMILIES, CRITERIA)}
    rates = list(RATES)
    yield
    for registry in (ATTACK_KINDS, TARGET_RULES, FAMILIES, CRITERIA):
        for name in set(registry) - set(before[id(registry)]):
            del registry[name]
    RATES[:] = rates


def test_adding_a_success_criterion(registries):
    exec(compile(_example("Adding a success criterion"), "design.md (criterion)", "exec"), {})
    from protobench.attacks.presets import load_attack

    assert load_attack("pgd-local", success="box-margin").success_criterion == "box-margin"


def test_adding_a_model_family(registries):
    exec(compile(_example("Adding a model family"), "design.md (family)", "exec"), {})
    from protobench.errors import ProtobenchError
    from protobench.model import Architecture

    with pytest.raises(ProtobenchError, match="cosine prototypes are 1x1"):
        Architecture(family="protopnet-cosine", prototype_size=2)


def test_adding_an_attack_kind(registries):
    scope: dict = {}
    exec(compile(_example("Adding an attack kind"), "design.md (kind)", "exec"), scope)
    from protobench.attacks.presets import load_attack
    from protobench.errors import ProtobenchError

    with pytest.raises(ProtobenchError, match="sigma.*allowed: a number > 0"):
        load_attack("noise", kind="gaussian-noise", sigma="0")
    with pytest.raises(ProtobenchError, match="sigma is an option of kind 'gaussian-noise'"):
        load_attack("pgd-local", sigma="0.5")


def test_adding_a_target_rule(registries):
    exec(compile(_example("Adding a target rule"), "design.md (target)", "exec"), {})
    import torch

    import protobench

    model = protobench.load("synth-smallcnn")
    report = protobench.attack(model, torch.rand(2, 3, 64, 64), [0, 1], "pgd-head-on-stomach",
                               target="bottom-row", steps=2)
    assert report.pairs.target[:, :-1].sum() == 0 and report.pairs.target[:, -1].any()
