"""Adding an attack, a model or a sparsity method is one new class plus one registry line.

Each test defines a throwaway one here (what a new file would hold), registers
it with one line, and runs it through train, eval and vis on generated data.
"""
import json

import pytest
import torch
import torch.nn as nn

from attacks import ATTACKS
from attacks.base import ALL_IMAGES, Attack, AttackRun, check_inputs, eval_mode
from cli_support import run_cli
from main import main
from models import MODELS
from sparsity.methods import METHODS, SparsityMethod

TRAIN = ["--mode", "train", "--classes", "0", "1", "--epochs", "1", "--batch-size", "16", "--train-per-class", "16",
         "--test-per-class", "5", "--device", "cpu"]
EVAL = ["--mode", "eval", "--device", "cpu", "--n-eval", "12", "--steps", "3", "--check-n", "4"]


class FGSM(Attack):
    """One signed-gradient step of size eps: the smallest white-box attack there is."""

    name = "fgsm"

    def __init__(self, model, eps=8 / 255, seed=None):
        super().__init__(model, seed)
        self.eps = eps

    def settings(self):
        return {"eps": self.eps}

    @classmethod
    def evaluation_runs(cls, model, config):
        return [AttackRun(cls.name, "FGSM", cls(model, eps=config.eps), images=ALL_IMAGES)]

    def __call__(self, x, y, targeted=False):
        x, y = check_inputs(self.model, x, y)
        with eval_mode(self.model), torch.enable_grad():
            x_req = x.clone().requires_grad_(True)
            loss = nn.functional.cross_entropy(self.model(x_req), y)
            (grad,) = torch.autograd.grad(-loss if targeted else loss, x_req)
        return (x + self.eps * grad.sign()).clamp(0, 1).detach(), None


class TinyMLP(nn.Module):
    """Flatten, one hidden layer, logits: the smallest model the registry contract allows."""

    LAYER_NAMES = ("hidden", "logits")

    def __init__(self, num_classes=10):
        super().__init__()
        self.hidden = nn.Linear(3 * 32 * 32, 32)
        self.logits = nn.Linear(32, num_classes)
        self.activations = nn.ModuleDict({"hidden": nn.ReLU(), "logits": nn.Identity()})

    def forward(self, x):
        return self.activations["logits"](self.logits(self.activations["hidden"](self.hidden(x.flatten(1) * 2 - 1))))


class L2ActivationPenalty(SparsityMethod):
    """``strength * mean(a^2)`` of the layer's activation."""

    def penalty(self, activation, strength):
        return strength * activation.float().pow(2).mean()


def run(argv, capsys):
    status, out, err = run_cli(main, argv, capsys)
    assert status == 0, err
    return out


def dirs(cifar_dir, tmp_path):
    return ["--data-dir", str(cifar_dir), "--models-dir", str(tmp_path / "models")]


def test_a_new_attack_runs_through_eval_and_vis(cifar_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(ATTACKS, FGSM.name, FGSM)  # the registry line
    run([*TRAIN, "--layers", "fc1", *dirs(cifar_dir, tmp_path)], capsys)
    run([*EVAL, "--attacks", "pgd", "fgsm", "--layers", "fc1", *dirs(cifar_dir, tmp_path),
         "--results-dir", str(tmp_path / "results")], capsys)
    record = json.loads((tmp_path / "results" / "l1" / "fc1_s0.01_seed0.json").read_text())
    assert record["attacks"]["fgsm"]["title"] == "FGSM" and record["attacks"]["fgsm"]["n"] == 12
    assert record["attacks"]["fgsm"]["robust_acc"] >= record["attacks"]["pgd"]["robust_acc"] - 1 / 12
    run(["--mode", "vis", "--results-dir", str(tmp_path / "results")], capsys)
    assert "## FGSM (white-box, untargeted)" in (tmp_path / "results" / "l1" / "summary.md").read_text()


def test_a_new_model_runs_through_train_eval_and_vis(cifar_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(MODELS, "tiny_mlp", TinyMLP)  # the registry line
    run([*TRAIN, "--model", "tiny_mlp", "--layers", "hidden", *dirs(cifar_dir, tmp_path)], capsys)
    checkpoint = torch.load(tmp_path / "models" / "l1" / "hidden_s0.01_seed0.pt", weights_only=True)
    assert checkpoint["metadata"]["recipe"]["model"] == "tiny_mlp"
    assert set(checkpoint["metadata"]["activation_sparsity"]) == {"hidden", "logits"}
    run([*EVAL, "--attacks", "pgd", "--layers", "hidden", *dirs(cifar_dir, tmp_path),
         "--results-dir", str(tmp_path / "results")], capsys)
    record = json.loads((tmp_path / "results" / "l1" / "hidden_s0.01_seed0.json").read_text())
    assert record["checkpoint"]["metadata"]["recipe"]["model"] == "tiny_mlp"
    out = run(["--mode", "vis", "--results-dir", str(tmp_path / "results")], capsys)
    assert "fig1_per_layer" in out and "| hidden (λ=0.01)" in (tmp_path / "results" / "l1" / "summary.md").read_text()


def test_a_new_sparsity_method_runs_through_train_eval_and_vis(cifar_dir, tmp_path, capsys, monkeypatch):
    method = L2ActivationPenalty("l2act", "L2 activation penalty", "μ", "L2 strength μ", 0.1, (0.01, 0.1, 1.0),
                                 log_scale=True)
    monkeypatch.setitem(METHODS, method.name, method)  # the registry line
    run([*TRAIN, "--method", "l2act", "--layers", "fc1", "--strength", "5", *dirs(cifar_dir, tmp_path)], capsys)
    assert (tmp_path / "models" / "l2act" / "fc1_s5_seed0.pt").exists()
    run([*EVAL, "--attacks", "pgd", "--method", "l2act", "--layers", "fc1", "--strength", "5",
         *dirs(cifar_dir, tmp_path), "--results-dir", str(tmp_path / "results")], capsys)
    run(["--mode", "vis", "--method", "l2act", "--results-dir", str(tmp_path / "results")], capsys)
    summary = (tmp_path / "results" / "l2act" / "summary.md").read_text()
    assert summary.startswith("# Results: L2 activation penalty at one layer (`l2act`)")
    assert "| fc1 (μ=5)" in summary
    assert (tmp_path / "results" / "l2act" / "fig1_per_layer.png").exists()


@pytest.fixture(autouse=True)
def _no_leftover_registrations():
    before = (dict(ATTACKS), dict(MODELS), dict(METHODS))
    yield
    assert (dict(ATTACKS), dict(MODELS), dict(METHODS)) == before
