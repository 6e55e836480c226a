"""Per-image minimal adversarial perturbation (eps*): exact on a model whose answer is known, a tight APGD
bisection bound, censoring, the median's bootstrap interval and the check that FAB and the bisection agree."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from attacks.autoattack import apgd_per_image
from common import stats
from evaluation.checks import check_minimal_methods_agree
from evaluation.minimal import (BISECTION_METHOD, CENSORED, CLEAN, FAB_METHOD, TOLERANCE, MinimalPerturbation,
                                Search, apgd_bisection, minimal_perturbations, robust_accuracy_curve)
from records.parts import EpsStarEntry
from test_evaluate import ChannelMeans, channel_images
from test_robust_eval import MLP, coloured_images

CPU = torch.device("cpu")
STEPS = 20  # the protocol's steps here (--quick's)
SEARCH = Search(fab_steps=20, fab_restarts=1, targets=1, bisection_steps=STEPS)  # cheap: these tests are not FAB's


def measure(model, x, y, norm, limit, search=SEARCH):
    return minimal_perturbations(model, x, y, norm, replace(search, limit=limit, batch_size=32))


@pytest.mark.parametrize("norm, per_unit", [("linf", 0.5), ("l2", 0.5 * math.sqrt(32))])
def test_eps_star_is_the_exact_minimal_perturbation_of_a_linear_model(norm, per_unit):
    # ChannelMeans predicts the brightest channel mean: the cheapest flip moves the 16 pixels of the true and of the
    # closest other channel by half their mean gap each, so eps* is gap/2 in L-inf and gap/2 * sqrt(32) in L2
    y = torch.arange(3).repeat(8)
    x = channel_images(y, margin=0.15)
    means = x.mean(dim=(2, 3))
    gap = (means[torch.arange(24), y].unsqueeze(1) - means).scatter(1, y.unsqueeze(1), math.inf).amin(1)
    exact = gap.double() * per_unit
    result = measure(ChannelMeans(), x, y, norm, limit=0.5)
    assert (result.eps_star >= exact * (1 - 1e-4)).all()
    assert (result.eps_star <= exact * (1 + 2 * TOLERANCE)).all(), (result.eps_star / exact).max()
    assert (ChannelMeans()(result.x_adv).argmax(1) != y).all()


@pytest.fixture(scope="module")
def trained_mlp():
    torch.manual_seed(0)
    model = MLP()
    x, y = coloured_images(512, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    x_test, y_test = coloured_images(48, seed=2)
    return model.eval(), x_test, y_test


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_bisection_bound_is_tight_and_the_stored_example_fools(trained_mlp, norm):
    model, x, y = trained_mlp
    size, x_adv, converged = apgd_bisection(model, x, y, norm, replace(SEARCH, limit=0.2))
    found = torch.isfinite(size) & (size > 0)
    assert found.sum() >= 40 and converged.all()
    with torch.no_grad():
        assert (model(x_adv[found]).argmax(1) != y[found]).all()
    delta = (x_adv - x).flatten(1)
    stored = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert torch.allclose(stored[found].double(), size[found], rtol=1e-5)
    # the seeded oracle at 0.99 x eps*, asked again for these images alone: fools none of them
    _, fooled = apgd_per_image(model, x[found], y[found], (0.99 * size[found]).float(), norm=norm, steps=STEPS,
                               targets=1, seed=0)
    assert not fooled.any()


def test_misclassified_images_get_zero_and_images_beyond_the_limit_are_censored_and_counted():
    y = torch.arange(3).repeat(4)
    x = channel_images(y, margin=0.3)
    labels = y.clone()
    labels[:2] = (y[:2] + 1) % 3  # misclassified from the start
    result = measure(ChannelMeans(), x, labels, "linf", limit=0.02)  # below every image's gap / 2
    assert result.method[:2] == [CLEAN, CLEAN] and result.eps_star[:2].tolist() == [0.0, 0.0]
    assert result.method[2:] == [CENSORED] * 10 and torch.isinf(result.eps_star[2:]).all()
    entry = EpsStarEntry.measured(result, seed=0, settings={})
    assert (entry.n, entry.n_clean_misclassified, entry.n_censored) == (12, 2, 10)
    assert entry.median is None and entry.median_censored and entry.eps_star[2] is None
    assert entry.curve[0].robust_acc == pytest.approx(10 / 12) == entry.curve[-1].robust_acc


def test_curve_is_the_fraction_of_images_whose_eps_star_exceeds_each_eps():
    eps_star = torch.tensor([0.0, 0.1, 0.2, 0.3, math.inf], dtype=torch.float64)
    curve = robust_accuracy_curve(eps_star, limit=0.4, points=5)
    assert [point["eps"] for point in curve] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert [point["robust_acc"] for point in curve] == pytest.approx([0.8, 0.6, 0.4, 0.2, 0.2])


def test_bootstrap_interval_follows_the_censoring_convention():
    values = torch.linspace(0, 1, 201, dtype=torch.float64)
    low, high = stats.bootstrap_median_interval(values, seed=0)
    assert 0.4 < low < 0.5 < high < 0.6
    assert stats.bootstrap_median_interval(values, seed=0) == (low, high)  # reproducible
    low, high = stats.bootstrap_median_interval([0.1] * 10 + [math.inf] * 9, seed=0)
    assert low == 0.1 and high == math.inf  # the interval reaches past the limit


def entries(fab, bisection):
    """The L-inf entry of FAB's and the bisection's per-image sizes (eps*: the smaller, FAB's on a tie)."""
    fab, bisection = (torch.tensor(sizes, dtype=torch.float64) for sizes in (fab, bisection))
    methods = [FAB_METHOD if f <= b else BISECTION_METHOD for f, b in zip(fab.tolist(), bisection.tolist())]
    result = MinimalPerturbation("linf", 1.0, torch.minimum(fab, bisection), methods, fab, bisection,
                                 torch.ones(len(fab), dtype=torch.bool), torch.zeros(len(fab), 1))
    return {"linf": EpsStarEntry.measured(result, seed=0, settings={"fab_steps": 20})}


@pytest.mark.parametrize("fab_larger, bisection_larger, status", [
    (0, 0, "passed"), (3, 0, "passed"), (6, 0, "failed"), (8, 2, "passed"), (12, 2, "failed"), (0, 12, "passed")])
def test_fab_clearly_above_the_bisection_on_more_images_than_chance_fails_the_check(fab_larger, bisection_larger,
                                                                                     status, recwarn):
    # the tolerance comes from the images that disagree (an exact sign test), not from a fixed factor on medians
    fab = [0.05] * 40 + [0.1] * fab_larger + [0.05] * bisection_larger
    bisection = [0.05] * 40 + [0.05] * fab_larger + [0.1] * bisection_larger
    assert check_minimal_methods_agree(entries(fab, bisection)).status == status
    assert check_minimal_methods_agree({}).status == "not_run"
