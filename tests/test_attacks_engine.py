import pytest
import torch
import torchattacks

from protobench.attacks.engine import MaskedPGD, frozen
from protobench.attacks.objectives import CrossEntropyObjective, PrototypeObjective
from protobench.errors import ProtobenchError
from protobench.model import Architecture, ProtoPNet


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ProtoPNet.build(Architecture(img_size=32, num_classes=3, prototypes_per_class=2,
                                        prototype_depth=16)).eval()


def pairs(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 32, 32, generator=g)
    mask = torch.zeros(n, 1, 32, 32, dtype=torch.bool)
    for i in range(n):
        mask[i, :, 4 * i:4 * i + 12, 8:20] = True       # each pair its own box
    R = torch.zeros(n, 4, 4, dtype=torch.bool)
    R[:, 1, 1] = True
    objective = PrototypeObjective("displace", torch.arange(n) % 6, R, ~R)
    return x, mask, objective


@pytest.mark.parametrize("norm,eps", [("Linf", 8 / 255), ("L2", 0.5)])
def test_perturbation_is_exactly_zero_outside_the_mask_and_within_eps(model, norm, eps):
    x, mask, objective = pairs()
    attack = MaskedPGD(model, norm=norm, eps=eps, alpha=eps / 4, steps=5, restarts=2)
    x_adv, values = attack(x, mask, objective, torch.Generator().manual_seed(1))
    outside = ~mask.expand_as(x)
    assert torch.equal(x_adv[outside], x[outside])
    assert (x_adv != x)[mask.expand_as(x)].any()
    delta = (x_adv - x).flatten(1)
    if norm == "Linf":
        assert delta.abs().amax() <= eps + 1e-6
    else:
        assert (delta.norm(dim=1) <= eps * (1 + 1e-5)).all()
    torch.testing.assert_close(values, objective(model, x_adv))


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_output_is_clipped_to_the_unit_interval(model, norm):
    x, mask, objective = pairs()
    x = (x > 0.5).float()               # every pixel at a bound
    x_adv, _ = MaskedPGD(model, norm=norm, eps=0.3, alpha=0.1, steps=3)(x, mask, objective)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv != x).any()


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_full_mask_cross_entropy_equals_torchattacks_pgd(model, norm):
    x = torch.rand(4, 3, 32, 32)
    labels = torch.tensor([0, 1, 2, 0])
    eps, alpha = (8 / 255, 2 / 255) if norm == "Linf" else (0.5, 0.1)
    ours, _ = MaskedPGD(model, norm=norm, eps=eps, alpha=alpha, steps=5, random_start=False)(
        x, torch.ones(4, 1, 32, 32, dtype=torch.bool), CrossEntropyObjective(labels))
    reference = (torchattacks.PGD if norm == "Linf" else torchattacks.PGDL2)(
        model, eps=eps, alpha=alpha, steps=5, random_start=False)(x, labels)
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=0)


class ConstantMaps(torch.nn.Module):
    """A model whose similarity maps do not depend on the image."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def similarity_maps(self, x):
        return self.weight * torch.ones(len(x), 2, 4, 4) + 0 * x.mean()


def test_zero_gradient_is_refused():
    x, mask, objective = pairs()
    objective.prototype = objective.prototype % 2
    with pytest.raises(ProtobenchError, match="identically zero"):
        MaskedPGD(ConstantMaps(), steps=3)(x, mask, objective)


def test_objective_without_any_gradient_is_refused(model):
    x, mask, _ = pairs()

    def argmax_objective(m, images):  # a detached objective, the bug this guards against
        return m.similarity_maps(images).flatten(1).argmax(dim=1).float()

    with pytest.raises(ProtobenchError, match="identically zero"):
        MaskedPGD(model, steps=3)(x, mask, argmax_objective)


def test_nan_output_is_refused(model):
    x, mask, objective = pairs()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ProtobenchError, match="NaN"):
        MaskedPGD(model, steps=1)(x, mask, objective)


def test_restarts_keep_the_best_per_pair(model):
    x, mask, objective = pairs(n=6, seed=3)
    single = MaskedPGD(model, eps=16 / 255, alpha=4 / 255, steps=1, restarts=1)
    g = torch.Generator().manual_seed(7)
    runs = [single(x, mask, objective, g) for _ in range(3)]  # the same random starts as below
    values = torch.stack([v for _, v in runs])                 # (3, N)
    best_x, best_values = MaskedPGD(model, eps=16 / 255, alpha=4 / 255, steps=1, restarts=3)(
        x, mask, objective, torch.Generator().manual_seed(7))
    assert torch.equal(best_values, values.amax(dim=0))
    which = values.argmax(dim=0)
    assert len(set(which.tolist())) > 1                        # restarts did matter
    for i, r in enumerate(which.tolist()):
        assert torch.equal(best_x[i], runs[r][0][i])


def test_seeded_runs_repeat(model):
    x, mask, objective = pairs()
    attack = MaskedPGD(model, steps=2)
    a, _ = attack(x, mask, objective, torch.Generator().manual_seed(5))
    b, _ = attack(x, mask, objective, torch.Generator().manual_seed(5))
    c, _ = attack(x, mask, objective, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_model_is_frozen_in_eval_mode_and_restored(model):
    x, mask, objective = pairs()
    model.train()
    seen = []

    def spying(m, images):
        seen.append((m.training, any(p.requires_grad for p in m.parameters())))
        return objective(m, images)

    MaskedPGD(model, steps=2)(x, mask, spying)
    assert seen and all(s == (False, False) for s in seen)
    assert model.training and all(p.requires_grad for n, p in model.named_parameters()
                                  if not n.endswith("ones"))
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    with frozen(model):
        assert not model.training


@pytest.mark.parametrize("kwargs,match", [
    (dict(eps=1.5), r"eps=1\.5"), (dict(steps=0), "steps=0"), (dict(alpha=0), "alpha=0"),
    (dict(norm="L1"), "'L1'"), (dict(restarts=0), "restarts=0"),
])
def test_bad_budgets_are_refused(model, kwargs, match):
    with pytest.raises(ProtobenchError, match=match):
        MaskedPGD(model, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_numbers(model):
    x, mask, objective = pairs()
    gpu_objective = PrototypeObjective(objective.name, objective.prototype.cuda(),
                                       objective.source.cuda(), objective.target.cuda())
    _, cpu_values = MaskedPGD(model, steps=3, random_start=False)(x, mask, objective)
    gpu, gpu_values = MaskedPGD(model.cuda(), steps=3, random_start=False)(
        x.cuda(), mask.cuda(), gpu_objective)
    # sign steps may flip where a gradient is ~0, so compare the objective, not pixels
    torch.testing.assert_close(gpu_values.cpu(), cpu_values, atol=2e-3, rtol=1e-2)
    started, _ = MaskedPGD(model, steps=3)(x.cuda(), mask.cuda(), gpu_objective,
                                           torch.Generator().manual_seed(1))
    model.cpu()
    outside = ~mask.expand_as(x)
    for out in (gpu.cpu(), started.cpu()):
        assert torch.equal(out[outside], x[outside])
        assert (out - x).abs().max() <= 8 / 255 + 1e-6


def margin_pairs(n=4, seed=0):
    """Pairs with a target-margin objective: move the peak into the last row of cells."""
    x, mask, _ = pairs(n, seed)
    T = torch.zeros(n, 4, 4, dtype=torch.bool)
    T[:, 3, :] = True
    mask = torch.ones_like(mask)
    return x, mask, PrototypeObjective("target-margin", torch.arange(n) % 6, ~T, T)


@pytest.mark.parametrize("norm,eps", [("Linf", 8 / 255), ("L2", 0.5)])
def test_apgd_stays_in_the_mask_and_the_ball_and_returns_its_best_point(model, norm, eps):
    from protobench.attacks.engine import MaskedAPGD
    x, mask, objective = pairs()
    x_adv, values = MaskedAPGD(model, norm=norm, eps=eps, steps=10)(
        x, mask, objective, torch.Generator().manual_seed(1))
    outside = ~mask.expand_as(x)
    assert torch.equal(x_adv[outside], x[outside])
    delta = (x_adv - x).flatten(1)
    if norm == "Linf":
        assert delta.abs().amax() <= eps + 1e-6
    else:
        assert (delta.norm(dim=1) <= eps * (1 + 1e-5)).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    torch.testing.assert_close(values, objective(model, x_adv))


def test_apgd_is_at_least_as_strong_as_pgd_on_the_same_budget(model):
    """APGD keeps its best point and adapts its step; on a margin objective it
    ends at least as high as fixed-step PGD, on average over pairs."""
    from protobench.attacks.engine import MaskedAPGD
    x, mask, objective = margin_pairs(n=8)
    _, pgd = MaskedPGD(model, eps=4 / 255, alpha=1 / 255, steps=20, random_start=False)(
        x, mask, objective)
    _, apgd = MaskedAPGD(model, eps=4 / 255, steps=20, random_start=False)(x, mask, objective)
    clean = objective(model, x)
    assert (apgd > clean).all()
    assert apgd.mean() >= pgd.mean() - 1e-6


def test_apgd_halves_the_step_of_an_oscillating_pair():
    """On f(x) = -|x - c| with a step too large to land on c, the objective
    oscillates, the step size halves at the checkpoints, and APGD gets closer
    than the first step size allows."""
    from protobench.attacks.engine import MaskedAPGD

    class Distance(torch.nn.Module):
        def forward(self, x):
            return x

    x = torch.full((1, 3, 2, 2), 0.5)
    target = 0.5 + 0.013

    def objective(model, z):
        return -(z - target).abs().flatten(1).sum(dim=1)

    mask = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    x_adv, value = MaskedAPGD(Distance(), eps=0.1, steps=50, random_start=False)(x, mask, objective)
    assert (x_adv - target).abs().max() < 0.2 * 0.013  # eta started at 0.2, 15x the distance


def test_restarts_keep_the_best_success_score_not_the_best_objective(model):
    x, mask, objective = pairs()
    T = torch.zeros(4, 4, 4, dtype=torch.bool)
    T[:, 0, 0] = True

    def success(m, z):                         # a score unrelated to the objective
        return -(z - x).abs().flatten(1).sum(dim=1)

    one = MaskedPGD(model, eps=16 / 255, alpha=4 / 255, steps=2, restarts=1)
    three = MaskedPGD(model, eps=16 / 255, alpha=4 / 255, steps=2, restarts=3)
    _, s1 = one(x, mask, objective, torch.Generator().manual_seed(0), success)
    x3, s3 = three(x, mask, objective, torch.Generator().manual_seed(0), success)
    assert (s3 >= s1).all()
    torch.testing.assert_close(s3, success(model, x3))


# ------------------------------------------------------------ every family's objective
def _family(family: str) -> ProtoPNet:
    torch.manual_seed(0)
    extra = {"protopool": dict(prototypes_per_class=2, num_prototypes=4, prototype_depth=16),
             "pipnet": {}, "protopnet": dict(prototypes_per_class=2, prototype_depth=16),
             "tesnet": dict(prototypes_per_class=2, prototype_depth=16)}[family]
    arch = Architecture(family=family, img_size=32, num_classes=3, **extra)
    return ProtoPNet.build(arch, classes=["a", "b", "c"], name=family).eval()


def _last_batch_norm(model: ProtoPNet) -> torch.nn.BatchNorm2d:
    return [m for m in model.net.features.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]


def _flatten_features(model: ProtoPNet) -> None:
    """The backbone's last BatchNorm outputs its bias alone: no pixel reaches a prototype."""
    _last_batch_norm(model).weight.zero_()


def _saturate_sigmoid(model: ProtoPNet) -> None:
    """ProtoPool's add-on Sigmoid at 1 in every cell: every latent patch the same."""
    model.net.add_on_layers[0].bias.fill_(1e4)


@pytest.mark.parametrize("family, kill", [
    ("protopnet", _flatten_features),
    ("protopool", _saturate_sigmoid),
    ("pipnet", _flatten_features),
    ("tesnet", _flatten_features),
])
def test_zero_gradient_guard_on_each_familys_objective(family, kill):
    from protobench.attacks import AttackPreset
    from protobench.attacks.pairs import select_pairs
    from protobench.attacks.kinds.masked_pgd import make_objective

    model = _family(family)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    preset = AttackPreset(k=1)
    pairs = select_pairs(model, x, torch.tensor([0, 1]), preset=preset)
    objective = make_objective(preset, pairs)
    MaskedPGD(model, eps=8 / 255, steps=1)(x[pairs.image_index], pairs.mask, objective)  # it moves
    with torch.no_grad():
        kill(model)
    with pytest.raises(ProtobenchError, match="identically zero"):
        MaskedPGD(model, eps=8 / 255, steps=2)(x[pairs.image_index], pairs.mask, objective)


def test_a_saturated_pip_net_softmax_still_gives_the_attack_a_gradient():
    """One channel dominates every cell: the presence is exactly one-hot, its gradient is
    identically zero, and the log-odds the objective ascends still have one."""
    from protobench.attacks.objectives import PrototypeObjective

    model = _family("pipnet")
    with torch.no_grad():
        _last_batch_norm(model).bias[0] = 1e6
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)).requires_grad_()
    presence = model.similarity_maps(x)
    assert torch.equal(presence[:, 0], torch.ones_like(presence[:, 0]))  # saturated
    presence[:, 1].sum().backward()
    assert torch.count_nonzero(x.grad) == 0
    x.grad = None
    model.attack_maps(x)[:, 1].sum().backward()
    assert torch.count_nonzero(x.grad) > 0
    mask = torch.ones(2, 1, 32, 32, dtype=torch.bool)
    cells = torch.zeros(2, *presence.shape[-2:], dtype=torch.bool)
    cells[:, 0, 0] = True
    objective = PrototypeObjective("target-margin", torch.tensor([1, 1]), ~cells, cells)
    x_adv, value = MaskedPGD(model, eps=8 / 255, steps=2)(x.detach(), mask, objective)  # no refusal
    assert (x_adv != x.detach()).any() and torch.isfinite(value).all()


# ------------------------------------------------------------ restarts and guards at every step
@pytest.mark.parametrize("method", ["pgd", "apgd"])
def test_a_pair_that_cannot_succeed_keeps_its_attacked_image_not_the_clean_one(model, method):
    """An empty success region scores -inf on every restart; the pair still gets the
    first restart's result (it used to get the clean image back)."""
    from protobench.attacks.engine import MASKED_METHODS

    x, mask, objective = pairs()

    def success(m, z):
        score = -(z - x).abs().flatten(1).sum(dim=1)
        score[1] = float("-inf")                 # pair 1 cannot succeed
        return score

    attack = MASKED_METHODS[method](model, eps=8 / 255, steps=3, restarts=2)
    x_adv, scores = attack(x, mask, objective, torch.Generator().manual_seed(0), success)
    assert scores[1] == float("-inf")
    changed = (x_adv - x).abs().flatten(1).amax(dim=1)
    assert (changed > 0).all()                   # every pair was attacked, pair 1 included
    assert torch.equal(x_adv[~mask.expand_as(x)], x[~mask.expand_as(x)])


@pytest.mark.parametrize("method", ["pgd", "apgd"])
def test_nan_after_the_first_step_is_refused(model, method):
    """Finite at the clean image, NaN once a pixel moves: a NaN score never wins a
    comparison, so the attack would return an earlier point without a word."""
    from protobench.attacks.engine import MASKED_METHODS

    x, mask, _ = pairs()

    def objective(m, z):
        value = (z * mask).flatten(1).sum(dim=1)
        moved = (z - x).abs().flatten(1).amax(dim=1) > 0
        return torch.where(moved, value * float("nan"), value)

    with pytest.raises(ProtobenchError, match="NaN"):
        MASKED_METHODS[method](model, steps=3, random_start=False)(x, mask, objective)


def test_a_nan_gradient_is_refused(model):
    """sqrt at 0: a finite objective whose gradient is 0/0 (its sign, 0, would freeze the pixels)."""
    x, mask, _ = pairs()

    def objective(m, z):
        return (z - x).pow(2).flatten(1).sum(dim=1).sqrt()

    with pytest.raises(ProtobenchError, match="gradient is NaN"):
        MaskedPGD(model, steps=2, random_start=False)(x, mask, objective)


def test_a_gradient_only_outside_the_mask_is_refused(model):
    """The attack can change only pixels inside the mask: a gradient there of zero means it
    cannot move, however large the gradient elsewhere."""
    x, mask, _ = pairs()

    def objective(m, z):
        return (z * ~mask).flatten(1).sum(dim=1)

    with pytest.raises(ProtobenchError, match="identically zero"):
        MaskedPGD(model, steps=2)(x, mask, objective)
