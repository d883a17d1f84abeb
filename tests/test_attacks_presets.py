import pytest
import torch

from protobench.attacks import select_pairs
from protobench.attacks.presets import AttackPreset, attack_names, load_attack, parse_fraction
from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet

SPEC_PRESETS = {"pgd-local", "pgd-head-on-stomach", "pgd-suppress", "pgd-outside", "pgd-global",
                "fgsm", "apgd", "jpeg", "noise"}


def test_every_spec_preset_exists_and_loads():
    assert SPEC_PRESETS <= set(attack_names())
    for name in attack_names():
        preset = load_attack(name)
        assert preset.name == name and preset.description


def test_pgd_local_is_the_spec_attack():
    p = load_attack("pgd-local")
    assert (p.kind, p.method, p.norm, p.objective, p.mask, p.target) == (
        "masked-pgd", "apgd", "Linf", "target-margin", "high-activation", "irrelevant")
    assert p.eps == 8 / 255 and p.alpha == 2 / 255 and p.steps == 40 and p.random_start
    assert (p.prototypes, p.k) == ("top-k", 1)


def test_the_other_presets_follow_the_spec():
    assert load_attack("pgd-outside").margin == 10
    assert load_attack("pgd-outside").objective == "suppress"
    assert load_attack("pgd-outside").mask == "outside"
    assert load_attack("pgd-suppress").mask == "high-activation"
    assert load_attack("pgd-head-on-stomach").mask == "target"
    assert load_attack("pgd-head-on-stomach").target in ("most-similar", "farthest")
    assert load_attack("pgd-local", target="irrelevant-box").target == "farthest"  # old name
    assert {load_attack(n).method for n in ("pgd-global", "fgsm", "apgd")} == {"pgd", "fgsm", "apgd"}
    assert load_attack("jpeg").qualities
    assert load_attack("noise").kind == "noise"


def test_overrides_from_python_and_from_strings():
    p = load_attack("pgd-local", eps="4/255", alpha=0.001, steps="10", random_start="false",
                    prototypes="3,17", target_cells="1,2;3,4", norm=None)
    assert p.eps == 4 / 255 and p.alpha == 0.001 and p.steps == 10 and not p.random_start
    assert p.prototypes == (3, 17) and p.target_cells == ((1, 2), (3, 4))
    assert load_attack("jpeg", qualities="90,10").qualities == (90, 10)
    assert p.norm == "Linf"                          # None leaves the preset's value
    assert load_attack("pgd-local", prototypes="class-top-k", k=3).k == 3
    assert p.to_dict()["prototypes"] == [3, 17]


def test_an_option_of_another_kind_is_refused_and_named():
    """A preset gives its own kind's options: qualities belong to jpeg, method to the
    iterative kinds, members to ensembles."""
    with pytest.raises(ProtobenchError, match="qualities is an option of kind 'jpeg', not of 'masked-pgd'"):
        load_attack("pgd-local", qualities="90,10")
    with pytest.raises(ProtobenchError, match="method is an option of kind 'masked-pgd' and "
                                              "'ensemble' and 'whole-image', not of 'jpeg'"):
        load_attack("jpeg", method="apgd")
    assert load_attack("jpeg", qualities=50).qualities == (50,)


@pytest.mark.parametrize("text,value", [("8/255", 8 / 255), ("0.0314", 0.0314), (0.5, 0.5),
                                        (1, 1.0), (" 2 / 255 ", 2 / 255)])
def test_parse_fraction(text, value):
    assert parse_fraction(text) == value


@pytest.mark.parametrize("text", ["eight", "8/0", "1/2/3", True, None, "nan"])
def test_parse_fraction_refuses(text):
    with pytest.raises(ProtobenchError, match="eps="):
        parse_fraction(text, "eps")


def test_unknown_attack_lists_the_presets():
    with pytest.raises(ProtobenchError, match="unknown attack 'pgd-nowhere'; choose one of: .*pgd-local"):
        load_attack("pgd-nowhere")


@pytest.mark.parametrize("overrides,match", [
    (dict(eps="1.5"), r"eps=1\.5 .*\[0, 1\]"),
    (dict(eps=-0.1), r"eps=-0\.1"),
    (dict(steps=0), r"steps=0 .*>= 1"),
    (dict(steps="many"), "steps='many'"),
    (dict(alpha=0), r"alpha=0\.0"),
    (dict(restarts=0), "restarts=0"),
    (dict(norm="L1"), "unknown norm 'L1'.*Linf, L2"),
    (dict(objective="confuse"), "unknown objective 'confuse'.*displace"),
    (dict(mask="everywhere"), "unknown mask 'everywhere'.*high-activation"),
    (dict(kind="magic"), "unknown kind 'magic'.*masked-pgd"),
    (dict(target="nowhere"), "unknown target 'nowhere'"),
    (dict(method="fgsm"), "unknown method 'fgsm'.*pgd, apgd"),
    (dict(temperature=-1), "temperature=-1.0"),
    (dict(temperature=0.5, objective="displace"),
     "objective='displace'.*target-margin, box-margin when temperature"),
    (dict(success="always"), "unknown success 'always'.*in-target"),
    (dict(members=[{"objective": "raise"}]), "members=.*option of kind 'ensemble', not of 'masked-pgd'"),
    (dict(prototypes="best"), "prototypes='best'.*top-k"),
    (dict(k=0), "k=0"),
    (dict(margin=-1), "margin=-1"),
    (dict(target="box", target_box=[5, 1, 0, 4]), "target_box"),
    (dict(random_start="maybe"), "random_start='maybe'"),
    (dict(colour="red"), r"attack options: unknown key\(s\) 'colour'"),
])
def test_bad_values_name_themselves(overrides, match):
    with pytest.raises(ProtobenchError, match=match):
        load_attack("pgd-local", **overrides)


def test_whole_image_presets_refuse_masks_and_map_objectives():
    with pytest.raises(ProtobenchError, match="mask='high-activation'"):
        load_attack("pgd-global", mask="high-activation")
    with pytest.raises(ProtobenchError, match="objective='suppress'"):
        load_attack("apgd", objective="suppress")
    with pytest.raises(ProtobenchError, match="norm='L2'"):
        load_attack("fgsm", norm="L2")
    with pytest.raises(ProtobenchError, match="qualities"):
        load_attack("jpeg", qualities=[0])


def test_bad_toml_names_the_file_and_key(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("eps = \n")
    with pytest.raises(ProtobenchError, match="broken.toml"):
        load_attack(bad)
    odd = tmp_path / "odd.toml"
    odd.write_text("epsilon = 0.1\n")
    with pytest.raises(ProtobenchError, match=r"unknown key\(s\) 'epsilon'"):
        load_attack(odd)
    good = tmp_path / "mine.toml"
    good.write_text('objective = "raise"\neps = "4/255"\n')
    assert load_attack(good).name == "mine" and load_attack(good).objective == "raise"


def test_an_empty_mask_is_refused_with_the_pair_named():
    model = ProtoPNet.build(Architecture(img_size=32, num_classes=3, prototypes_per_class=2,
                                         prototype_depth=16)).eval()
    preset = load_attack("pgd-outside", margin=64)
    with pytest.raises(ProtobenchError, match=r"mask 'outside' \(margin 64 px\) is empty"):
        select_pairs(model, torch.rand(2, 3, 32, 32), torch.tensor([0, 1]), None, preset)


def test_defaults_are_valid():
    assert AttackPreset().kind == "masked-pgd"


def test_ensemble_members_inherit_the_threat_model(tmp_path):
    p = load_attack("auto-local", eps="4/255", steps=7)
    members = p.member_presets()
    assert p.kind == "ensemble" and len(members) >= 4
    assert {(m.kind, m.mask, m.eps, m.steps, m.norm, m.success_criterion) for m in members} == {
        ("masked-pgd", "high-activation", 4 / 255, 7, "Linf", "in-target")}
    assert {m.method for m in members} == {"pgd", "apgd"}
    assert "displace" in {m.objective for m in members}     # Hoffmann's objective is a member
    assert p.to_dict()["members"][0]["objective"] == "displace"


@pytest.mark.parametrize("members,match", [
    ([], "members=.*non-empty"),
    ([{"eps": "16/255"}], "member 0 sets eps; a member inherits the ensemble's threat model"),
    ([{"objective": "cross-entropy"}], "member 0 .*cross-entropy"),
    ("pgd", "members='pgd' must be a list of tables"),
])
def test_bad_ensembles_are_refused(members, match):
    with pytest.raises(ProtobenchError, match=match):
        load_attack("auto-local", members=members)
    with pytest.raises(ProtobenchError, match="success='objective'"):
        load_attack("auto-local", success="objective")
