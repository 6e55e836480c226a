"""k-winners-take-all as a sparsity method: what the layer keeps, the method through train, eval and vis, and the
evaluation seeing through the robustness PGD reports for it (gradient masking)."""
import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cli_support import assert_usage_error, run_cli
from evaluation.config import EvalConfig
from main import main
from models.spec import ModelSpec
from sparsity.kwta import KWinners
from sparsity.methods import METHODS
from test_robust_eval import CLASSES, EPS, MLP, coloured_images, evaluate
from training.checkpoint import build_spec_model

KWTA = ModelSpec("kwta", "conv2", 0.1, 0)  # what the evaluation is told a k-WTA model is: a method that masks
straight_through = METHODS["kwta"].straight_through

TRAIN = ["--mode", "train", "--classes", "0", "1", "--epochs", "1", "--batch-size", "16", "--train-per-class", "16",
         "--test-per-class", "5", "--device", "cpu"]


def test_each_sample_keeps_its_k_largest_values_and_zeroes_the_rest():
    x = torch.tensor([[[[3.0, -1.0], [0.5, 2.0]]], [[[-4.0, -3.0], [-2.0, -5.0]]]])  # (2, 1, 2, 2)
    kept = KWinners(0.5)(x)  # k = 2 of 4 values per sample, over channels and positions together
    assert torch.equal(kept, torch.tensor([[[[3.0, 0.0], [0.0, 2.0]]], [[[0.0, -3.0], [-2.0, 0.0]]]]))
    assert torch.equal(KWinners(0.01)(x[:1]), torch.tensor([[[[3.0, 0.0], [0.0, 0.0]]]]))  # at least one value


@pytest.mark.parametrize("training", [True, False])
def test_kwta_replaces_the_layers_relu_at_training_and_test_time(training):
    torch.manual_seed(0)
    model = build_spec_model(KWTA, (3, 32, 32), 10).train(training)
    assert isinstance(model.activations["conv2"], KWinners)
    seen = {}
    model.activations["conv2"].register_forward_hook(lambda module, inputs, output: seen.update(out=output))
    model(torch.rand(3, 3, 32, 32))
    nonzero = (seen["out"].flatten(1) != 0).sum(1)
    assert nonzero.tolist() == [int(0.1 * 64 * 28 * 28)] * 3


def run(argv, capsys):
    status, out, err = run_cli(main, argv, capsys)
    assert status == 0, err
    return out


def test_kwta_runs_through_train_eval_and_vis(cifar_dir, tmp_path, capsys):
    dirs = ["--data-dir", str(cifar_dir), "--models-dir", str(tmp_path / "models")]
    out = run([*TRAIN, "--method", "kwta", "--layers", "fc1", "--strength", "0.2", *dirs], capsys)
    assert "kwta_fc1_s0.2_seed0: trained" in out
    run(["--mode", "eval", "--audit-radii", "none", "--method", "kwta", "--layers", "fc1", "--strength", "0.2", "--attacks", "pgd",
         "--n-eval", "8", "--steps", "3", "--check-n", "4", "--minimal-norms", "none", "--device", "cpu", *dirs,
         "--results-dir", str(tmp_path / "results")], capsys)
    results = tmp_path / "results" / "cifar10" / "simple_cnn"
    record = json.loads((results / "kwta_fc1_s0.2_seed0.json").read_text())
    assert record["activation_sparsity"]["fc1"] == pytest.approx(1 - int(0.2 * 256) / 256, abs=0.02)
    run(["--mode", "vis", "--method", "kwta", "--results-dir", str(tmp_path / "results")], capsys)
    assert "| fc1 (γ=0.2)" in (results / "kwta" / "summary.md").read_text()


@pytest.mark.parametrize("strength", ["0", "1.5", "-0.1"])
def test_gamma_outside_zero_one_exits_2_before_any_work(strength, tmp_path, capsys):
    status, _, err = run_cli(main, [*TRAIN, "--method", "kwta", "--strength", strength, "--data-dir", str(tmp_path),
                                    "--models-dir", str(tmp_path / "m")], capsys)
    assert_usage_error(status, err, "--strength (fraction kept γ) must be in (0, 1]")
    assert not (tmp_path / "m").exists()


class KWinnersMLP(nn.Module):
    """The robust-evaluation tests' MLP with two hidden layers whose ReLUs are k-WTA (gamma 0.1)."""

    def __init__(self, width=256, gamma=0.1):
        super().__init__()
        self.hidden1, self.hidden2 = nn.Linear(192, width), nn.Linear(width, width)
        self.out = nn.Linear(width, CLASSES)
        self.kwta1, self.kwta2 = KWinners(gamma), KWinners(gamma)

    def forward(self, x):
        return self.out(self.kwta2(self.hidden2(self.kwta1(self.hidden1(x.flatten(1) * 2 - 1)))))


def trained(model, steps, lr):
    torch.manual_seed(0)
    x, y = coloured_images(1024, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


# PGD against the adaptive gradient-free attack, with a CPU-sized sample schedule, on 32 held-out images
MASKING = EvalConfig().with_options(
    attacks=("pgd", "nes_adaptive"), eps=EPS, alpha=EPS / 8, steps=20, query_n=32, adaptive_steps=20,
    adaptive_schedule=((0, 10), (5, 50), (10, 200)), check_n=32, minimal_norms=())


@pytest.fixture(scope="module")
def kwta_model():
    torch.manual_seed(0)  # the initial weights
    return trained(KWinnersMLP(), steps=300, lr=3e-3)


@pytest.fixture(scope="module")
def ordinary_model():
    torch.manual_seed(0)
    return trained(MLP(), steps=200, lr=1e-2)


def test_pgd_overstating_a_kwta_models_robustness_fails_a_check_naming_it(kwta_model):
    model = kwta_model
    x, y = coloured_images(32, seed=2)
    with pytest.warns(UserWarning, match="white_box_attacks_agree"):
        report = evaluate(model, x, y, MASKING, KWTA)
    pgd, adaptive = (report.attacks[key].robust_acc for key in ("pgd", "nes_adaptive"))
    assert pgd > adaptive + 0.1  # PGD's gradients mislead on k-WTA; the gradient-free attack sees through
    checks = {check.name: check for check in report.checks}
    assert checks["white_box_attacks_agree"].status == "failed"
    assert "unreliable for this model: pgd" in checks["white_box_attacks_agree"].detail
    assert report.worst_case.robust_acc <= adaptive


def test_an_ordinary_model_under_the_same_attacks_fails_no_check(ordinary_model):
    model = ordinary_model
    x, y = coloured_images(32, seed=2)
    report = evaluate(model, x, y, MASKING, KWTA)
    statuses = {check.name: check.status for check in report.checks}
    assert "failed" not in statuses.values() and statuses["white_box_attacks_agree"] == "passed", report.checks
    assert report.worst_case.robust_acc == min(entry.robust_acc for entry in report.attacks.values())


def test_straight_through_keeps_the_forward_pass_and_passes_gradients_through_the_mask():
    layer = KWinners(0.25)
    x = torch.tensor([[3.0, -1.0, 0.5, 2.0]], requires_grad=True)
    with straight_through(layer, "identity"):
        out = layer(x)
        (grad,) = torch.autograd.grad((out * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum(), x)
    assert torch.equal(out.detach(), torch.tensor([[3.0, 0.0, 0.0, 0.0]]))  # k-WTA's own forward pass
    assert torch.equal(grad, torch.tensor([[1.0, 2.0, 3.0, 4.0]]))  # the identity's backward pass
    with straight_through(layer, "relu"):
        (grad,) = torch.autograd.grad(layer(x).sum(), x)
    assert torch.equal(grad, torch.tensor([[1.0, 0.0, 1.0, 1.0]]))  # ReLU's
    assert layer.backward_as is None  # restored


def test_adaptive_attacks_run_on_a_kwta_model_and_bound_its_eps_star(kwta_model, ordinary_model, monkeypatch):
    model, source = kwta_model, ordinary_model  # the ordinary MLP stands in for the same-seed baseline
    x, y = coloured_images(12, seed=2)
    config = EvalConfig().with_options(
        attacks=("pgd",), eps=EPS, alpha=EPS / 8, steps=10, query_n=6, check_n=0,
        minimal_norms=("linf",), fab_steps=2, fab_restarts=1, minimal_targets=0,
        adaptive_attacks=("bpda_identity", "nes_adaptive", "transfer"),  # bpda_relu: the unit test
        audit_radii=(), adaptive_steps=8, adaptive_schedule=((0, 10), (4, 40)),  # no audit: at eps
        autoattack_iterations=20)  # AutoAttack's 100 are for evaluations
    with pytest.warns(UserWarning):  # a k-WTA model fails checks (that is what they are for)
        report = evaluate(model, x, y, config, KWTA, surrogate=source)
    adaptive = {entry.attack: entry for entry in report.audit.adaptive}
    assert set(adaptive) == {"bpda_identity", "nes_adaptive", "transfer"}
    assert {entry.eps for entry in adaptive.values()} == {EPS} and adaptive["nes_adaptive"].n == 6
    assert report.audit.radii == ()
    # through the mask, the white-box attack does what PGD's masked gradients do not
    assert adaptive["bpda_identity"].robust_acc < report.attacks["pgd"].robust_acc
    entry = report.minimal["linf"]
    eps_star = torch.tensor([math.inf if v is None else v for v in entry.eps_star])
    for name, attack in adaptive.items():
        # each attacked only the images nothing had broken at its radius before it, and bounds eps* where it fooled
        sizes = entry.attack_eps[attack.key].size
        fooled = [i for i, size in enumerate(sizes) if size is not None]
        assert attack.n_attacked <= attack.n and len(fooled) <= attack.n_attacked
        assert all(eps_star[i] <= sizes[i] for i in fooled), name
    assert adaptive["transfer"].n_attacked <= round(adaptive["bpda_identity"].robust_acc * 12)


def test_the_eps_star_bisection_attacks_through_the_top_k_on_a_kwta_model(kwta_model):
    """Inside the eps* search itself (not only folded in from the adaptive attacks): on a k-WTA model the bisection's
    oracle also runs APGD through BPDA, so its bound can only drop, and on this masked model it does."""
    from evaluation.minimal import Search, apgd_bisection

    x, y = coloured_images(16, seed=2)
    plain = Search(fab_steps=0, targets=0, bisection_steps=10, limit=0.5)
    adaptive = Search(fab_steps=0, targets=0, bisection_steps=10, straight_through=("identity",),
                      masking=METHODS["kwta"], limit=0.5)
    alone, _, _ = apgd_bisection(kwta_model, x, y, "linf", plain)
    through, x_adv, _ = apgd_bisection(kwta_model, x, y, "linf", adaptive)
    assert "BPDA (identity)" in adaptive.settings()["bisection_attack"]
    assert bool((through <= alone).all()) and bool((through < 0.9 * alone).any())
    found = torch.isfinite(through) & (through > 0)
    assert bool((kwta_model(x_adv[found]).argmax(1) != y[found]).all())  # each bound is a real fooling example
    assert all(m.backward_as is None for m in kwta_model.modules() if isinstance(m, KWinners))  # restored
