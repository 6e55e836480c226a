"""PGD and NES behaviour on tiny CPU models: budgets, success, targets, NES estimates, query accounting."""
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from attacks import NES, PGD, NESAdaptive
from attacks.base import attack_objective
from common.errors import ConfigError

SHAPE = (3, 6, 6)


def channel_task(n, seed, margin=0.35):
    """Images whose class is the brightest colour channel, brighter by ``margin``."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=generator)
    x = torch.rand((n, *SHAPE), generator=generator) * 0.5 + 0.1
    x[torch.arange(n), y] += torch.as_tensor(margin).reshape(-1, 1, 1) if torch.is_tensor(margin) else margin
    return x, y


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(8 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.dropout(F.relu(self.conv(x * 2 - 1)).flatten(1)))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = TinyCNN()
    x, y = channel_task(512, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    optimizer.zero_grad()  # grads are None again, so the attacks can be seen not to create any
    model.eval()
    x_test, y_test = channel_task(64, seed=2)
    with torch.no_grad():
        assert (model(x_test).argmax(1) == y_test).float().mean() > 0.95
    return model.train(), x_test, y_test  # left in train mode: the attacks must switch it themselves


def predictions(model, x):
    with torch.no_grad():
        return model.eval()(x).argmax(1)


class CountingModel(nn.Module):
    """Counts images forwarded per sample; a sample's id is written in pixel (0, 0, 0), spaced 0.3 apart,
    so perturbations below 0.15 cannot blur it."""

    def __init__(self, inner, n):
        super().__init__()
        self.inner = inner
        self.counts = torch.zeros(n, dtype=torch.int64)

    @staticmethod
    def tag(x):
        x = x.clone()
        x[:, 0, 0, 0] = 0.05 + 0.3 * torch.arange(len(x))
        return x

    def forward(self, x):
        ids = torch.round((x[:, 0, 0, 0] - 0.05) / 0.3).long()
        self.counts += torch.bincount(ids, minlength=len(self.counts))
        return self.inner(x)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_stays_in_ball_and_box_with_per_sample_eps(trained, norm):
    model, x, y = trained
    eps = torch.linspace(0, 0.3 if norm == "linf" else 1.5, len(x))
    x_adv = PGD(model, eps=eps, alpha=0.05, steps=10, norm=norm, restarts=2, seed=0)(x, y)[0]
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-6).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert torch.equal(x_adv[0], x[0])  # eps 0 leaves the sample where it was
    assert size[eps > 0].max() > 0.5 * eps.max()  # and the budget is really used


def test_nes_stays_in_ball_and_box(trained):
    model, x, y = trained
    x_adv, _ = NES(model, eps=0.2, alpha=0.05, steps=4, samples=10, sigma=0.01, seed=0)(x[:16], y[:16])
    assert (x_adv - x[:16]).abs().max() <= 0.2 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_pgd_flips_a_trained_model_with_large_eps_and_not_with_zero(trained):
    model, x, y = trained
    correct = predictions(model, x) == y
    fooled = predictions(model, PGD(model, eps=0.5, alpha=0.05, steps=20, seed=0)(x, y)[0]) != y
    assert fooled[correct].float().mean() >= 0.95
    unchanged = predictions(model, PGD(model, eps=0.0, alpha=0.05, steps=20, seed=0)(x, y)[0]) != y
    assert unchanged[correct].sum() == 0


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_targeted_pgd_reaches_its_target(trained, norm):
    model, x, y = trained
    target = (y + 1) % 3
    eps = 0.6 if norm == "linf" else 6.0
    x_adv = PGD(model, eps=eps, alpha=eps / 10, steps=30, norm=norm, seed=0)(x, target, targeted=True)[0]
    assert (predictions(model, x_adv) == target).float().mean() >= 0.95


def test_targeted_nes_reaches_its_target(trained):
    model, x, y = trained
    target = (y[:16] + 2) % 3
    x_adv, queries = NES(model, eps=0.6, alpha=0.05, steps=30, samples=20, sigma=0.01, seed=0)(
        x[:16], target, targeted=True)
    assert (predictions(model, x_adv) == target).float().mean() >= 0.9
    assert queries.dtype == torch.int64


def test_nes_estimate_aligns_with_the_true_gradient_on_a_smooth_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x = torch.rand(4, 3, 4, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    attack = NES(model, samples=4000, sigma=1e-3, query_batch=2048, seed=0)
    with torch.inference_mode():
        estimate = attack._estimate_gradient(x, y, False, attack.generator("cpu"), 4000)
    x_grad = x.clone().requires_grad_(True)
    (true,) = torch.autograd.grad(F.cross_entropy(model(x_grad), y, reduction="sum"), x_grad)
    cosine = F.cosine_similarity(estimate.flatten(1), true.flatten(1), dim=1)
    assert (cosine > 0.9).all(), cosine


@pytest.mark.parametrize("sync_every", [None, 4])
def test_nes_query_counts_are_exact_and_successful_samples_stop_querying(trained, sync_every):
    """Also when the host reads successes only every few iterations (as on a GPU): a finished sample then stays in
    the batch, frozen, and its queries are not counted."""
    model = trained[0]
    x, _ = channel_task(4, seed=3, margin=torch.tensor([0.0, 0.03, 0.4, 0.4]))  # two near the boundary
    x = CountingModel.tag(x)
    y = predictions(model, x)
    counting = CountingModel(model, 4)
    steps, samples = 6, 8
    x_adv, queries = NES(counting, eps=0.12, alpha=0.03, steps=steps, samples=samples, sigma=0.005,
                         query_batch=14, seed=0, sync_every=sync_every)(x, y)
    forwarded = counting.counts
    assert torch.equal(queries, forwarded) if sync_every is None else (queries <= forwarded).all()
    maximum = 2 + steps * (2 * samples + 1)
    succeeded = predictions(model, x_adv) != y
    assert (queries[~succeeded] == maximum).all()
    assert succeeded.any() and (queries[succeeded] < maximum).all()
    # a success costs the clean check plus whole iterations: 1 + k * (2 * samples + 1) + 1 (k >= 0)
    assert ((queries[succeeded] - 2) % (2 * samples + 1) == 0).all()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_gives_the_same_result_whenever_the_host_reads_successes(trained, norm, monkeypatch):
    """Every step (CPU) or every K steps (accelerators): finished samples are frozen on the device in between, and
    the host syncs only at those steps."""
    model, x, y = trained
    settled = []
    settle = PGD._settle
    monkeypatch.setattr(PGD, "_settle", staticmethod(lambda *args: settled.append(1) or settle(*args)))

    eps = {"linf": 0.1, "l2": 1.0}[norm]

    def run(sync_every, restarts=1):
        return PGD(model, eps=eps, alpha=eps / 5, steps=9, norm=norm, restarts=restarts, seed=0,
                   sync_every=sync_every)(x, y)[0]

    every_step = run(1)
    assert 0 < (predictions(model, every_step) != y).float().mean() < 1  # some samples finish early, some never
    settled.clear()
    every_fourth = run(4)
    assert len(settled) == 3  # after steps 4 and 8, and once at the end
    assert torch.allclose(every_step, every_fourth, atol=1e-6)
    assert torch.equal(predictions(model, every_step), predictions(model, every_fourth))
    assert torch.allclose(run(1, restarts=3), run(5, restarts=3), atol=1e-6)
@pytest.mark.parametrize("random_start", [True, False])
def test_nes_query_counts_stay_exact_under_a_sample_schedule(trained, random_start):
    model = trained[0]
    x, _ = channel_task(4, seed=3, margin=torch.tensor([0.0, 0.03, 0.4, 0.4]))
    x = CountingModel.tag(x)
    y = predictions(model, x)
    counting = CountingModel(model, 4)
    attack = NES(counting, eps=0.12, alpha=0.03, steps=6, samples=((0, 2), (2, 5), (4, 9)), sigma=0.005,
                 loss="margin", random_start=random_start, query_batch=14, seed=0)
    assert [attack.samples_at(step) for step in range(6)] == [2, 2, 5, 5, 9, 9]
    x_adv, queries = attack(x, y)
    assert torch.equal(queries, counting.counts)
    succeeded = predictions(model, x_adv) != y
    assert attack.max_queries() == 2 + 2 * (5 + 11 + 19) - (not random_start)
    assert succeeded.any() and (queries[~succeeded] == attack.max_queries()).all()


def test_margin_loss_is_the_best_other_logit_minus_the_labelled_one():
    logits = torch.tensor([[2.0, 5.0, 1.0], [0.0, -1.0, 3.0]])
    y = torch.tensor([1, 0])
    loss, success = attack_objective(logits, y, targeted=False, loss="margin")
    assert loss.tolist() == [-3.0, 3.0] and success.tolist() == [False, True]
    loss, success = attack_objective(logits, y, targeted=True, loss="margin")
    assert loss.tolist() == [3.0, -3.0] and success.tolist() == [True, False]


def test_nes_adaptive_is_nes_with_the_papers_settings_scaled_to_eps(trained):
    model, x, y = trained
    attack = NESAdaptive(model, eps=0.1)
    assert isinstance(attack, NES) and attack.loss == "margin" and attack.momentum == 0
    assert attack.sigma == pytest.approx(0.1) and attack.alpha == pytest.approx(0.1 * 0.01 / (8 / 255))
    assert attack.schedule == ((0, 100), (20, 1000), (40, 20000)) and attack.steps == 100
    assert NESAdaptive(model, eps=8 / 255).alpha == pytest.approx(0.01)
    small = NESAdaptive(model, eps=0.3, steps=20, samples=((0, 10), (10, 40)), seed=0)
    x_adv, queries = small(x[:16], y[:16])
    assert (x_adv - x[:16]).abs().max() <= 0.3 + 1e-6 and (queries <= small.max_queries()).all()
    assert (predictions(model, x_adv) != y[:16]).float().mean() > 0.5


@pytest.mark.parametrize("samples, fragment", [
    (((0, 100), (10, 100)), "must increase in both step and samples"),
    (((5, 100),), "must start at step 0"),
    ((), "lists no (from_step, samples) pair"),
    ("many", "must be a positive integer or (from_step, samples) pairs"),
])
def test_nes_refuses_a_schedule_that_does_not_increase(trained, samples, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        NES(trained[0], samples=samples)
    with pytest.raises(ConfigError, match="loss must be one of ce, margin"):
        NES(trained[0], loss="hinge")


def test_nes_initially_successful_sample_costs_one_query():
    model = nn.Sequential(nn.Flatten(), nn.Linear(108, 3))
    x = torch.rand(3, *SHAPE)
    y = predictions(model, x)
    y[1] = (y[1] + 1) % 3  # already misclassified
    _, queries = NES(model, steps=3, samples=4, seed=0)(x, y)
    assert queries[1] == 1


def test_attacks_restore_every_submodule_mode_and_leave_parameter_gradients_alone(trained):
    model, x, y = trained
    model.train()
    model.dropout.eval()
    PGD(model, steps=2, seed=0)(x, y)[0]
    NES(model, steps=1, samples=2, seed=0)(x[:4], y[:4])
    assert model.training and model.conv.training and not model.dropout.training
    assert all(parameter.grad is None for parameter in model.parameters())


def test_model_mode_is_restored_when_the_model_raises(trained):
    model, x, y = trained

    class Failing(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x):
            raise RuntimeError("boom")

    failing = Failing().train()
    for attack in (PGD(failing, steps=1), NES(failing, steps=1, samples=1)):
        with pytest.raises(RuntimeError):
            attack(x, y)
        assert failing.training and failing.inner.training


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_same_seed_same_result(trained, norm):
    model, x, y = trained

    def run(seed):
        return PGD(model, eps=0.1, alpha=0.02, steps=5, norm=norm, seed=seed)(x, y)[0]

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_nes_same_seed_same_result(trained):
    model, x, y = trained

    def run(seed):
        return NES(model, eps=0.1, alpha=0.02, steps=3, samples=5, momentum=0.9, seed=seed)(x[:8], y[:8])

    (first, q_first), (second, q_second) = run(5), run(5)
    assert torch.equal(first, second) and torch.equal(q_first, q_second)
    assert not torch.equal(first, run(6)[0])


def test_pgd_restarts_only_help(trained):
    model, x, y = trained
    single = predictions(model, PGD(model, eps=0.12, alpha=0.03, steps=5, seed=0)(x, y)[0]) != y
    several = predictions(model, PGD(model, eps=0.12, alpha=0.03, steps=5, restarts=4, seed=0)(x, y)[0]) != y
    assert several.sum() >= single.sum()


def test_pgd_l2_on_an_unbounded_binary_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 1))
    x = torch.randn(40, 20) * 3
    label = torch.where(net(x).squeeze(1) > 0, 1, -1)
    eps = torch.full((40,), 50.0)
    x_adv = PGD(net, eps=eps, alpha=1.0, steps=100, norm="l2", bounds=None, seed=0)(x, label)[0]
    with torch.no_grad():
        assert (torch.sign(net(x_adv).squeeze(1)) != label).all()
    assert ((x_adv - x).norm(dim=1) <= eps + 1e-4).all()
