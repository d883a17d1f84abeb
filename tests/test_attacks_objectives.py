import torch

from protobench.attacks.objectives import (
    CrossEntropyObjective, PrototypeObjective, displace, masked_max, masked_mean,
    prototype_maps, raise_similarity, suppress,
)


def maps_and_regions():
    sim = torch.tensor([[[1.0, 2.0], [3.0, 4.0]],
                        [[0.5, 0.0], [0.0, -1.0]]])
    R = torch.tensor([[[False, False], [False, True]],
                      [[True, False], [False, False]]])
    T = torch.tensor([[[True, True], [False, False]],
                      [[False, True], [True, True]]])
    return sim, R, T


def test_region_reductions():
    sim, R, T = maps_and_regions()
    torch.testing.assert_close(masked_mean(sim, T), torch.tensor([1.5, -1 / 3]))
    assert masked_max(sim, R).tolist() == [4.0, 0.5]


def test_displace_suppress_raise_on_hand_made_maps():
    sim, R, T = maps_and_regions()
    torch.testing.assert_close(displace(sim, R, T), torch.tensor([1.5 - 4.0, -1 / 3 - 0.5]))
    assert suppress(sim, R, T).tolist() == [-4.0, -0.5]
    assert raise_similarity(sim, R, T).tolist() == [2.0, 0.0]


def test_each_pair_gets_its_own_gradient_from_one_backward():
    sim, R, T = maps_and_regions()
    sim.requires_grad_(True)
    displace(sim, R, T).sum().backward()
    expected = T.float() / T.flatten(1).sum(1).view(-1, 1, 1) - R.float() / R.flatten(1).sum(1).view(-1, 1, 1)
    torch.testing.assert_close(sim.grad, expected)


class MapModel(torch.nn.Module):
    """similarity_maps(x) = per-prototype scaled copies of a 2x2 pooled image."""

    def similarity_maps(self, x):
        pooled = torch.nn.functional.adaptive_avg_pool2d(x.mean(1, keepdim=True), 2)
        return pooled * torch.arange(1.0, 4.0).view(1, 3, 1, 1)

    def forward(self, x):
        return self.similarity_maps(x).flatten(2).amax(2)


def test_prototype_objective_gathers_each_pairs_map():
    model = MapModel()
    x = torch.rand(4, 3, 8, 8)
    prototype = torch.tensor([0, 2, 1, 2])
    sim = prototype_maps(model, x, prototype)
    full = model.similarity_maps(x)
    for i in range(4):
        assert torch.equal(sim[i], full[i, prototype[i]])
    R = torch.zeros(4, 2, 2, dtype=torch.bool)
    R[:, 0, 0] = True
    objective = PrototypeObjective("suppress", prototype, R, ~R)
    assert torch.equal(objective(model, x), -sim.flatten(1).amax(1))
    assert torch.equal(objective.select(slice(1, 3))(model, x[1:3]), objective(model, x)[1:3])


def test_cross_entropy_objective_is_per_image():
    model = MapModel()
    x, labels = torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 2])
    values = CrossEntropyObjective(labels)(model, x)
    assert values.shape == (3,)
    torch.testing.assert_close(values.mean(), torch.nn.functional.cross_entropy(model(x), labels))


def test_margins_are_the_success_criteria():
    from protobench.attacks.objectives import box_margin, region_margin, smooth_max, target_margin
    sim, R, T = maps_and_regions()
    # pair 0: max over T = 2, elsewhere 4; pair 1: max over T = 0, elsewhere 0.5
    torch.testing.assert_close(target_margin(sim, R, T), torch.tensor([-2.0, -0.5]))
    # box-margin: max outside the box (source) minus max inside
    torch.testing.assert_close(box_margin(sim, R, T), torch.tensor([3.0 - 4.0, 0.0 - 0.5]))
    torch.testing.assert_close(region_margin(sim, ~R), box_margin(sim, R, T))
    # the smooth max is an upper bound within tau * log(#cells), and tends to the max
    for tau in (1.0, 0.1, 0.01):
        smooth = smooth_max(sim, T, tau)
        exact = smooth_max(sim, T)
        assert (smooth >= exact).all() and (smooth <= exact + tau * torch.log(torch.tensor(3.0))).all()
    torch.testing.assert_close(smooth_max(sim, T, 1e-4), smooth_max(sim, T), atol=1e-3, rtol=0)


def test_a_smooth_margin_gives_every_target_cell_a_gradient():
    sim, R, T = maps_and_regions()
    sim = sim.clone().requires_grad_(True)
    from protobench.attacks.objectives import target_margin
    exact, = torch.autograd.grad(target_margin(sim, R, T).sum(), sim)
    assert (exact[0][T[0]] != 0).sum() == 1             # only the argmax of T (pair 0: no tie)
    smooth, = torch.autograd.grad(target_margin(sim, R, T, temperature=1.0).sum(), sim)
    assert (smooth[T] > 0).all()
