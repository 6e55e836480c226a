"""AutoAttack, APGD and Square through the official package, and sanity checks that catch gradient masking.

The models are small MLPs on 3x8x8 images so that the full attacks (AutoAttack's
100-iteration APGD, Square's 5,000 queries) run in seconds on a CPU.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from pyautoattack.autopgd_base import APGDAttack

import attacks.autoattack as autoattack_module
from attacks import PGD, AutoAttack, Square
from attacks.autoattack import APGD
from evaluation.config import EvalConfig
from evaluation.metrics import run_attack
from evaluation.model import Baseline, ModelEvaluation
from models.spec import ModelSpec

CPU = torch.device("cpu")
CLASSES = 4
EPS = 0.04  # PGD leaves about a third of the test images correct: a regime where attacks can be compared


def coloured_images(n, seed):
    """Class k: a fixed random pattern k, one fifth of each pixel, under uniform noise."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % CLASSES
    patterns = torch.rand((CLASSES, 3, 8, 8), generator=torch.Generator().manual_seed(99))
    x = 0.2 * patterns[y] + 0.8 * torch.rand((n, 3, 8, 8), generator=generator)
    return x, y


def evaluate(model, x, y, config, spec=ModelSpec.baseline_of(0), surrogate=None):
    """The evaluation object's record part of ``model`` (a ``spec``'s model) on ``x, y``."""
    return ModelEvaluation(model, spec, (x, y), config, Baseline(surrogate=surrogate)).run()


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(192, 64)
        self.out = nn.Linear(64, CLASSES)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x.flatten(1))))


@pytest.fixture(scope="module")
def ordinary():
    """An ordinary trained model (about 95% test accuracy) and held-out images."""
    torch.manual_seed(0)
    model = MLP()
    x, y = coloured_images(512, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    x_test, y_test = coloured_images(64, seed=2)
    assert (model(x_test).argmax(1) == y_test).float().mean() > 0.85
    return model.eval(), x_test, y_test


class Rounded(nn.Module):
    """Input quantised to 8 bits: the same function almost everywhere, but every input gradient is zero."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 255) / 255)


class Scaled(nn.Module):
    """Logits x 1000: the same predictions, but softmax saturates and cross-entropy gradients vanish."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return 1000 * self.model(x)


class DeadLayer(nn.Module):
    """A layer of dead ReLUs before the output: the gradient is zero everywhere."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.dead = nn.Linear(CLASSES, 16)
        nn.init.constant_(self.dead.bias, -1e4)
        self.out = nn.Linear(16, CLASSES)

    def forward(self, x):
        return self.out(torch.relu(self.dead(self.model(x))))


def robust_acc(attack, x, y):
    outcome = run_attack(attack, x, y, batch_size=len(x))
    return (outcome["adv_pred"] == y).float().mean().item()


def test_autoattack_and_apgd_are_at_least_as_strong_as_pgd(ordinary):
    model, x, y = ordinary
    pgd = robust_acc(PGD(model, eps=EPS, alpha=EPS / 8, steps=20, seed=0), x, y)
    apgd = robust_acc(APGD(model, eps=EPS, seed=0), x, y)
    autoattack = robust_acc(AutoAttack(model, eps=EPS, seed=0), x, y)
    assert 0.05 < pgd < 0.9  # a regime where the comparison means something
    assert apgd <= pgd + 2 / len(y) and autoattack <= apgd + 1 / len(y)


def test_autoattack_keeps_the_callers_random_stream_and_stays_in_the_ball(ordinary):
    model, x, y = ordinary
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    x_adv, queries = AutoAttack(model, eps=EPS, seed=0)(x, y)
    assert torch.equal(torch.rand(3), expected) and queries is None
    assert (x_adv - x).abs().max() <= EPS + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1


class Counting(nn.Module):
    """Counts the images that pass through the model."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return self.model(x)


def test_square_query_counts_are_exactly_the_images_the_model_saw(ordinary):
    model, x, y = ordinary
    counting = Counting(model)
    for i in range(6):  # one image at a time: the wrapper's count is that image's count
        counting.seen = 0
        x_adv, queries = Square(counting, eps=EPS, queries=300, seed=0)(x[i:i + 1], y[i:i + 1])
        assert queries.tolist() == [counting.seen]
    counting.seen = 0
    x_adv, queries = Square(counting, eps=EPS, queries=300, seed=0)(x, y)
    assert int(queries.sum()) == counting.seen and queries.min() >= 1 and queries.max() <= 302
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    fooled = model(x_adv).argmax(1) != y
    # an image not fooled used the whole budget: the clean check, Square's start, one query per iteration
    assert fooled.any() and (queries[~fooled] == 302).all()


def test_square_misclassified_image_costs_one_query_and_targeted_reaches_its_target(ordinary):
    model, x, y = ordinary
    wrong = (y + 1) % CLASSES
    _, queries = Square(model, eps=EPS, queries=100, seed=0)(x[:4], wrong[:4])
    initially_wrong = model(x[:4]).argmax(1) != wrong[:4]
    assert (queries[initially_wrong] == 1).all()
    x_adv, _ = Square(model, eps=0.3, queries=500, seed=0)(x[:8], wrong[:8], targeted=True)
    assert (model(x_adv).argmax(1) == wrong[:8]).float().mean() >= 0.75


# eps* in L-inf with a short search (tests/test_eps_star.py is about the search and its audit): no audit here
CHECKED = EvalConfig().with_options(
    attacks=("pgd", "apgd", "square"), eps=EPS, alpha=EPS / 8, steps=20, query_n=32,
    square_queries=1000, check_n=64, minimal_norms=("linf",), fab_steps=10, fab_restarts=1,
    minimal_targets=1, audit_radii=())


def failed_checks(model, x, y):
    report = evaluate(model, x, y, CHECKED)
    return {check.name: check for check in report.checks}, report


def test_no_check_fails_on_an_ordinary_trained_model(ordinary):
    checks, _ = failed_checks(*ordinary)
    assert {name: c.status for name, c in checks.items()} == {**dict.fromkeys(checks, "passed"),
                                                                 "eps_star_matches_autoattack": "not_run"}
    assert set(checks) == {"pgd_eps1_success", "robust_acc_monotone_in_eps", "black_box_not_stronger_than_white_box",
                           "white_box_attacks_agree", "zero_input_gradients", "minimal_perturbation_methods_agree",
                           "eps_star_matches_autoattack"}


@pytest.mark.parametrize("mask, expected", [
    (Rounded, {"black_box_not_stronger_than_white_box", "zero_input_gradients"}),
    (Scaled, {"zero_input_gradients"}),
    (DeadLayer, {"zero_input_gradients", "pgd_eps1_success"}),
])
def test_checks_catch_deliberately_masked_models(ordinary, mask, expected):
    model, x, y = ordinary
    with pytest.warns(UserWarning, match="sanity check"):
        checks, _ = failed_checks(mask(model).eval(), x, y)
    failed = {name for name, c in checks.items() if c.status == "failed"}
    assert expected <= failed, {name: c.detail for name, c in checks.items()}


def test_eps_sweep_gives_a_falling_curve_per_white_box_attack(ordinary):
    model, x, y = ordinary
    config = EvalConfig().with_options(
        attacks=("pgd", "square"), eps=EPS, alpha=EPS / 8, steps=20, query_n=8, square_queries=50,
        check_n=0, eps_sweep=(EPS / 4, EPS, 2 * EPS), minimal_norms=())
    report = evaluate(model, x, y, config)
    curve = report.curves["pgd"]
    assert set(report.curves) == {"pgd"}  # Square is black-box: no curve
    assert [point.eps for point in curve] == [EPS / 4, EPS, 2 * EPS]
    accuracies = [point.robust_acc for point in curve]
    assert accuracies[0] > accuracies[1] >= accuracies[2]
    assert accuracies[1] == report.attacks["pgd"].robust_acc
    compared = {"black_box_not_stronger_than_white_box", "white_box_attacks_agree"}  # PGD and Square, on 8 images
    assert {check.status for check in report.checks if check.name not in compared} == {"not_run"}


@pytest.mark.filterwarnings("ignore:sanity check white_box_attacks_agree failed")  # PGD-10 is weaker than APGD here
def test_an_evaluation_does_no_attack_twice(ordinary, monkeypatch):
    """PGD at 2·eps runs once when the eps sweep holds it (the curve and the monotonicity check share it), APGD runs
    once where AutoAttack runs too (AutoAttack continues its result, and gives what it gives alone), and the
    package's AutoAttack is built once, not per batch."""
    model, x, y = ordinary
    pgd_eps, apgd_ce, built = [], [], []
    pgd_call, perturb = PGD.__call__, APGDAttack.perturb
    monkeypatch.setattr(PGD, "__call__", lambda self, *args, **kw: pgd_eps.append(self.eps) or pgd_call(self, *args,
                                                                                                           **kw))
    monkeypatch.setattr(APGDAttack, "perturb", lambda self, *args, **kw: (
        apgd_ce.append(self.eps) if type(self) is APGDAttack else None) or perturb(self, *args, **kw))

    class CountedAutoAttack(autoattack_module.OfficialAutoAttack):
        def __init__(self, *args, **kwargs):
            built.append(kwargs["attacks"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(autoattack_module, "OfficialAutoAttack", CountedAutoAttack)
    config = EvalConfig().with_options(
        attacks=("pgd", "apgd", "autoattack"), eps=EPS, alpha=EPS / 8, steps=10, check_n=64,
        eps_sweep=(EPS, 2 * EPS), batch_size=32, minimal_norms=())  # eps*'s PGD bisection aside
    report = evaluate(model, x, y, config)
    assert sorted(pgd_eps) == sorted([EPS] * 2 + [2 * EPS] * 2 + [1.0] * 2)  # two batches each: eps, 2·eps, check
    assert sorted(apgd_ce) == [EPS] * 2 + [2 * EPS] * 2
    # per eps: APGD's parts, and AutoAttack's rest; each configured once however many batches
    assert built == [["apgd-ce", "apgd-t"], ["fab-t", "square"]] * 2
    checks = {check.name: check for check in report.checks}
    assert f"{report.curves['pgd'][1].robust_acc:.4f} at eps={2 * EPS:.5g}" \
        in checks["robust_acc_monotone_in_eps"].detail
    monkeypatch.setattr(APGDAttack, "perturb", perturb)
    alone = run_attack(AutoAttack(model, eps=EPS, seed=0), x, y, batch_size=32)
    assert report.attacks["autoattack"].robust_acc == (alone["adv_pred"] == y).float().mean().item()
    assert report.attacks["autoattack"].settings["version"] == "standard"
