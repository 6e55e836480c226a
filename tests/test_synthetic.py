"""Synthetic experiment: sphere data, the batched trainer, and the three minimal-flip measures."""
import math

import pytest
import torch

from common.device import cpu_threads
from models.relu_net import StackedReLUNet
from synthetic.data import sample_sphere_data
from synthetic.measures import (attack_flip, flip_measures, is_flipped, margin_set, margin_set_directions,
                                theory_directions)
from synthetic.trainer import (RunSpec, TrainSettings, dropout_masks, final_statistics, objective_and_gradients,
                               prepare_runs, subset, train_stacked)

D, M, WIDTH = 400, 20, 100  # d >> m: the regime of the theory, small enough for seconds on a CPU
# L1 coefficients on sum(h) at these sizes and the default fit target: about 20 of the 100 units die at the
# first, 90 at the second, and nearly all at the third, where PGD's last step tends to land past the boundary
L1_IN_TRANSITION, L1_MOSTLY_DEAD, L1_COLLAPSED = 3e-9, 1e-8, 3e-8


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """As the experiment runs (synthetic.experiment.run_experiment): these small products are slower with
    more threads on a busy machine."""
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def trained():
    """Unregularised, L1 and dropout runs on the same seed, trained once for the whole module."""
    specs = [RunSpec(0), RunSpec(1), RunSpec(0, l1=L1_COLLAPSED), RunSpec(0, dropout=0.2)]
    batch = prepare_runs(specs, D, M, WIDTH)
    outcome = train_stacked(batch, TrainSettings(steps=5000), progress=False)
    return batch, outcome


def test_sphere_data_on_sphere_nearly_orthogonal_and_seeded():
    data = sample_sphere_data(2000, 10, torch.Generator().manual_seed(3))
    assert torch.allclose(data.x.norm(dim=1), torch.full((10,), math.sqrt(2000)), rtol=1e-5)
    cosines = (data.x @ data.x.T / 2000).fill_diagonal_(0)
    assert cosines.abs().max() < 0.15
    assert set(data.y.tolist()) == {-1.0, 1.0}
    again = sample_sphere_data(2000, 10, torch.Generator().manual_seed(3))
    assert torch.equal(data.x, again.x) and torch.equal(data.y, again.y)


def test_hand_written_gradients_match_autograd():
    generators = [torch.Generator().manual_seed(s) for s in (0, 1)]
    x = torch.randn(2, 7, 5, generator=generators[0])
    y = torch.tensor([[1.0, -1.0] * 3 + [1.0]] * 2)
    net = StackedReLUNet.initialise(5, 6, generators, std=0.5)
    l1 = torch.tensor([0.0, 0.03])
    mask = dropout_masks([0.0, 0.5], [None, torch.Generator().manual_seed(0)], (7, 6), "cpu")

    fit_loss, objective, grads = objective_and_gradients(net, x, y, l1, mask)

    params = [net.w.clone().requires_grad_(), net.b.clone().requires_grad_(), net.v.clone().requires_grad_()]
    hidden = torch.relu(torch.einsum("rnd,rkd->rnk", x, params[0]) + params[1].unsqueeze(1))
    logits = ((hidden * mask) * params[2].unsqueeze(1)).sum(2)
    reference = torch.nn.functional.softplus(-y * logits).mean(1) + l1 * hidden.abs().sum((1, 2))
    reference.sum().backward()
    assert torch.allclose(objective, reference.detach(), atol=1e-6)
    clean = torch.nn.functional.softplus(-y * (hidden * params[2].unsqueeze(1)).sum(2)).mean(1)
    assert torch.allclose(fit_loss, clean.detach(), atol=1e-6)  # the data loss without dropout
    assert not torch.allclose(objective, fit_loss)
    for grad, param in zip(grads, params):
        assert torch.allclose(grad, param.grad, atol=1e-6)


def test_every_run_trains_to_the_same_fit(trained):
    batch, outcome = trained
    stats = final_statistics(outcome.net, batch.x, batch.y, batch.l1)
    assert outcome.stop_reasons == ["target"] * 4 and outcome.converged == [True] * 4
    # Each run stopped at the first iterate whose data loss, tracked on incrementally updated pre-activations, was
    # below the target; recomputed here from the weights it rounds differently (the L1 run: 9.9997e-08 on an AMD
    # EPYC, 1.0000e-07 printed on an Intel Xeon, issue 25), so the check allows a stated 1% margin above the target.
    target = TrainSettings().loss_target
    assert stats["train_acc"].eq(1).all() and stats["final_loss"].max() < target * 1.01
    # the L1 run gets there later, with most units dead
    assert outcome.steps[2] > 2 * outcome.steps[0]
    assert stats["dead_units"][2] > WIDTH / 2 and stats["dead_units"][0] < WIDTH / 10


def test_a_run_stopped_by_the_step_cap_is_not_converged():
    batch = prepare_runs([RunSpec(0)], D, M, WIDTH)
    outcome = train_stacked(batch, TrainSettings(optimizer="gd", lr=0.5, steps=300), progress=False)
    stats = final_statistics(outcome.net, batch.x, batch.y, batch.l1)
    assert outcome.stop_reasons == ["max_steps"] and outcome.steps == [300] and outcome.converged == [False]
    # plain gradient descent trains too, only slower
    assert stats["train_acc"][0] == 1 and stats["final_loss"][0] < 0.1


def test_dropout_runs_stop_on_the_loss_of_the_network_without_dropout():
    batch = prepare_runs([RunSpec(0, dropout=0.5)], D, M, WIDTH)
    target = 1e-4
    outcome = train_stacked(batch, TrainSettings(steps=3000, loss_target=target), progress=False)
    assert outcome.stop_reasons == ["target"]
    net, x, y = outcome.net, batch.x, batch.y
    # recomputed from the weights, the stopping loss rounds differently: a stated 1% margin (as above)
    assert final_statistics(net, x, y, batch.l1)["final_loss"][0] < target * 1.01
    mask = dropout_masks([0.5], [torch.Generator().manual_seed(1)], (M, WIDTH), "cpu")
    fit_loss, objective, _ = objective_and_gradients(net, x, y, batch.l1, mask)
    # while the loss under dropout is larger (here 8.5e-5 against 1.9e-4)
    assert fit_loss[0] < target * 1.01 < objective[0]


@pytest.mark.parametrize("steps", [40, 250])
def test_batched_trainer_matches_one_run_at_a_time(steps):
    """Same seed, same result, whatever else is in the batch; the L1 run loses units on the way."""
    specs = [RunSpec(2), RunSpec(2, dropout=0.3), RunSpec(3, l1=L1_MOSTLY_DEAD)]
    settings = TrainSettings(steps=steps, check_every=20)
    together = train_stacked(prepare_runs(specs, D, M, WIDTH), settings, progress=False)
    for r, spec in enumerate(specs):
        alone = train_stacked(prepare_runs([spec], D, M, WIDTH), settings, progress=False)
        assert together.stop_reasons[r] == alone.stop_reasons[0]
        assert int(together.steps[r]) == int(alone.steps[0])
        for name in ("w", "b", "v"):
            ours, reference = getattr(together.net, name)[r], getattr(alone.net, name)[0]
            assert (ours - reference).norm() <= 1e-4 * reference.norm()


def test_dropout_only_during_training(trained):
    batch, outcome = trained
    dropout_run = subset(batch, [3])
    net = outcome.net.select(torch.tensor([3]))
    # evaluation is deterministic and equals the plain module, i.e. no units are dropped
    first, second = net(dropout_run.x), net(dropout_run.x)
    assert torch.equal(first, second)
    assert torch.allclose(first[0], net.single(0)(dropout_run.x[0]), atol=1e-5)
    # while training, the same parameters give a different (masked) loss
    mask = dropout_masks([0.2], [torch.Generator().manual_seed(0)], (M, WIDTH), "cpu")
    _, clean, _ = objective_and_gradients(net, dropout_run.x, dropout_run.y, dropout_run.l1)
    _, masked, _ = objective_and_gradients(net, dropout_run.x, dropout_run.y, dropout_run.l1, mask)
    assert not torch.allclose(clean, masked, rtol=1e-3, atol=0)


@pytest.fixture(scope="module")
def measured(trained):
    batch, outcome = trained
    return flip_measures(outcome.net, batch.x, batch.y, 2 * math.sqrt(D), seed=0)


def test_unregularised_network_is_not_robust_as_the_theory_says(trained, measured):
    theory_median = measured.theory[:2].median(1).values
    assert (theory_median < 0.4 * math.sqrt(D)).all()  # far below the data norm ...
    assert (theory_median < 3 * math.sqrt(D / M)).all()  # ... on the sqrt(d/m) scale


def test_theory_direction_flips_exactly_at_reported_scale(trained, measured):
    batch, outcome = trained
    directions = theory_directions(batch.x, batch.y)
    c = measured.theory.unsqueeze(2)
    assert torch.isfinite(measured.theory).all()
    assert is_flipped(outcome.net, batch.x + c * directions, batch.y).all()
    assert not is_flipped(outcome.net, batch.x + 0.999 * c * directions, batch.y).any()


def test_margin_set_flips_all_at_reported_scale_and_not_before(trained, measured):
    batch, outcome = trained
    members = margin_set(outcome.net, batch.x, batch.y)
    assert measured.margin_set_size.eq(members.sum(1)).all() and members.any(1).all()
    # a run may have no flip along its margin-set direction within the search limit (inf); the
    # unregularised ones, whose margin set is every point (a KKT point has all margins equal), do
    found = torch.isfinite(measured.margin_set)
    assert found[:2].all()
    directions = margin_set_directions(batch.x, batch.y, members)[found]
    c = measured.margin_set[found].view(-1, 1, 1)
    x, y, members = batch.x[found], batch.y[found], members[found]
    net = outcome.net.select(found.nonzero().squeeze(1))
    assert (is_flipped(net, x + c * directions, y) | ~members).all()
    assert not (is_flipped(net, x + 0.999 * c * directions, y) | ~members).all(1).any()


def test_attack_perturbations_flip_and_are_tight_to_one_percent(trained, measured):
    batch, outcome = trained
    assert torch.isfinite(measured.attack).all()
    assert torch.allclose(measured.attack_delta.norm(dim=2), measured.attack, rtol=1e-4)
    assert (measured.attack <= measured.theory * (1 + 1e-5)).all()
    for r in range(outcome.net.runs):
        model = outcome.net.single(r)
        x, y, delta = batch.x[r], batch.y[r], measured.attack_delta[r]
        assert (y * model(x + delta) < 0).all()
        assert not (y * model(x + 0.99 * delta) < 0).any()
    # the search started from the theory direction found shorter perturbations than it for some points
    assert (measured.attack < 0.99 * measured.theory).any()


def test_measures_are_exact_on_a_linear_network():
    """All units active everywhere: N is affine, the smallest flip is |N(x)| / ||sum_j v_j w_j||."""
    generator = torch.Generator().manual_seed(5)
    data = sample_sphere_data(50, 8, generator)
    net = StackedReLUNet.initialise(50, 16, [generator], std=0.1)
    net.b += 100.0  # every pre-activation stays positive on the region searched
    net.v -= net.v.mean()  # so the biases cancel in N: N(x) = normal . x, with moderate margins
    x = data.x.unsqueeze(0)
    y = torch.where(net(x) > 0, 1.0, -1.0)  # correctly classified by construction
    normal = (net.v.unsqueeze(2) * net.w).sum(1)  # (1, d)
    exact = (y * net(x)).abs() / normal.norm()
    along_theory = (y * net(x)) / (theory_directions(x, y) @ normal.unsqueeze(2)).squeeze(2).abs()

    members = margin_set(net, x, y)
    set_direction = -margin_set_directions(x, y, members)[0, 0] * y[0, 0]  # z/||z|| over the margin set
    along_set = ((y * net(x))[members] / (set_direction @ normal[0])).max()

    measures = flip_measures(net, x, y, 100.0, seed=0)
    assert torch.allclose(measures.attack, exact, rtol=0.01)
    assert torch.allclose(measures.theory, along_theory, rtol=1e-3)
    assert torch.allclose(measures.margin_set[0], along_set, rtol=1e-3)


def test_attack_without_a_known_flip_searches_up_to_the_limit(trained):
    batch, outcome = trained
    net = outcome.net.select(torch.tensor([0]))
    unknown = torch.full((1, M), float("inf"))
    norms, deltas = attack_flip(net, batch.x[:1], batch.y[:1], unknown, torch.zeros(1, M, D), 2 * math.sqrt(D))
    assert torch.isfinite(norms).all()
    assert (batch.y[0] * net.single(0)(batch.x[0] + deltas[0]) < 0).all()
    too_small = torch.full((1, M), float("inf"))
    none, _ = attack_flip(net, batch.x[:1], batch.y[:1], too_small, torch.zeros(1, M, D), 1e-3)
    assert torch.isinf(none).all()
