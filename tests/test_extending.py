"""Adding an attack, a model, a sparsity method (one that masks gradients too) or a data set is one new class or record
plus one registry line.

Each test defines a throwaway one here (what a new file would hold), registers
it with one line, and runs it through train, eval and vis on generated data.
"""

import contextlib
import json
import math
import re
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn

from attacks import ATTACKS
from attacks.base import ALL_IMAGES, Attack, AttackRun, AttackSettings, check_inputs, eval_mode
from cli_support import assert_usage_error, run_cli
from common import validation
from common.cli import option
from data.dataset import Dataset, ImageData
from data.registry import DATASETS
from main import main
from models import MODELS
from sparsity.methods import METHODS, SparsityMethod

TRAIN = ["--mode", "train", "--classes", "0", "1", "--epochs", "1", "--batch-size", "16", "--train-per-class", "16",
         "--test-per-class", "5", "--device", "cpu"]
EVAL = ["--mode", "eval", "--audit-radii", "none", "--device", "cpu", "--n-eval", "12", "--steps", "3", "--check-n", "4",
        "--minimal-norms", "none"]


@dataclass(frozen=True)
class FGSMSettings(AttackSettings):
    """A setting of FGSM's own: its option is --fgsm-size."""

    size: float = option(1.0, "FGSM's step as a fraction of eps (default {default})")

    def validate(self):
        validation.number(self.size, "size", above=0, maximum=1)


class FGSM(Attack):
    """One signed-gradient step of size ``size`` x eps: the smallest white-box attack there is."""

    name = "fgsm"
    Settings = FGSMSettings

    def __init__(self, model, eps=8 / 255, size=1.0, seed=None):
        super().__init__(model, seed)
        self.eps, self.size = eps, size

    def settings(self):
        return {"eps": self.eps, "size": self.size}

    @classmethod
    def evaluation_runs(cls, model, config):
        size = config.settings_of(cls.name).size
        return [AttackRun(cls.name, "FGSM", cls(model, eps=config.eps, size=size), images=ALL_IMAGES)]

    def __call__(self, x, y, targeted=False):
        x, y = check_inputs(self.model, x, y)
        with eval_mode(self.model), torch.enable_grad():
            x_req = x.clone().requires_grad_(True)
            loss = nn.functional.cross_entropy(self.model(x_req), y)
            (grad,) = torch.autograd.grad(-loss if targeted else loss, x_req)
        return (x + self.size * self.eps * grad.sign()).clamp(0, 1).detach(), None


class TinyMLP(nn.Module):
    """Flatten, one hidden layer, logits: the smallest model the registry contract allows."""

    LAYER_NAMES = ("hidden", "logits")

    def __init__(self, input_shape=(3, 32, 32), num_classes=10):
        super().__init__()
        self.hidden = nn.Linear(math.prod(input_shape), 32)
        self.logits = nn.Linear(32, num_classes)
        self.activations = nn.ModuleDict({"hidden": nn.ReLU(), "logits": nn.Identity()})

    def forward(self, x):
        return self.activations["logits"](self.logits(self.activations["hidden"](self.hidden(x.flatten(1) * 2 - 1))))


class L2ActivationPenalty(SparsityMethod):
    """``strength * mean(a^2)`` of the layer's activation."""

    def penalty(self, activation, strength):
        return strength * activation.float().pow(2).mean()


class Staircase(nn.Module):
    """The activation rounded to steps of 0.5: almost every input gradient is zero (masking), and the forward pass is
    unchanged by a straight-through backward."""

    straight = False

    def forward(self, x):
        stepped = torch.relu(x * 2).floor() / 2
        return x.relu() + (stepped - x.relu()).detach() if self.straight else stepped


class StaircaseMethod(SparsityMethod):
    """Replaces the layer's ReLU by a staircase: it declares that it masks gradients and how to see through it."""

    masks_gradients = True
    straight_through_modes = ("identity",)

    def attach(self, model, layer, strength):
        model.activations[layer] = Staircase()

    @contextlib.contextmanager
    def straight_through(self, model, backward_as):
        layers = [module for module in model.modules() if isinstance(module, Staircase)]
        for module in layers:
            module.straight = True
        try:
            yield model
        finally:
            for module in layers:
                module.straight = False


def read_two_tone(data_dir, download=True):
    """Two-channel 20x20 images whose class is which channel is brighter, plus noise."""
    generator = torch.Generator().manual_seed(0)

    def split(count):
        labels = torch.arange(count) % 3
        levels = torch.stack([labels == 1, labels == 2], dim=1).float() * 0.5 + 0.25
        images = levels[:, :, None, None] + 0.1 * torch.randn(count, 2, 20, 20, generator=generator)
        return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels

    return ImageData(*split(60), *split(30), ["dim", "red", "green"])


TWO_TONE = Dataset(name="two-tone", title="Two-tone", input_shape=(2, 20, 20), class_names=("dim", "red", "green"),
                   source="generated in memory", eps=0.05, step=0.005, eps_sweep=(0.02, 0.05), eps_denominator=None,
                   augment="crop", augment_reason="generated", train_per_class=20, read=read_two_tone)


def run(argv, capsys):
    status, out, err = run_cli(main, argv, capsys)
    assert status == 0, err
    return out


def results(tmp_path):
    return tmp_path / "results" / "cifar10" / "simple_cnn"


def dirs(cifar_dir, tmp_path):
    return ["--data-dir", str(cifar_dir), "--models-dir", str(tmp_path / "models")]


def test_a_new_attack_runs_through_eval_and_vis(cifar_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(ATTACKS, FGSM.name, FGSM)  # the registry line
    assert re.search(r"--fgsm-size \S+\s+FGSM's step as a fraction of eps", run(["--mode", "eval", "--help"], capsys))
    run([*TRAIN, "--layers", "fc1", *dirs(cifar_dir, tmp_path)], capsys)
    evaluate = [*EVAL, "--attacks", "pgd", "fgsm", "--layers", "fc1", *dirs(cifar_dir, tmp_path),
                "--results-dir", str(tmp_path / "results")]
    assert_usage_error(*run_cli(main, [*evaluate, "--fgsm-size", "2"], capsys)[::2], "--fgsm-size must be <= 1")
    assert_usage_error(*run_cli(main, [*evaluate, "--fgsm-size", "half"], capsys)[::2], "--fgsm-size", "'half'")
    run([*evaluate, "--fgsm-size", "0.5"], capsys)
    record = json.loads((results(tmp_path) / "l1_fc1_s0.01_seed0.json").read_text())
    assert record["attacks"]["fgsm"]["title"] == "FGSM" and record["attacks"]["fgsm"]["n"] == 12
    assert record["attacks"]["fgsm"]["settings"]["size"] == 0.5  # the flag reaches the attack
    assert record["eval_config"]["attack_settings"]["fgsm"] == {"size": 0.5}
    assert record["attacks"]["fgsm"]["robust_acc"] >= record["attacks"]["pgd"]["robust_acc"] - 1 / 12
    run(["--mode", "vis", "--results-dir", str(tmp_path / "results")], capsys)
    assert "FGSM" in (results(tmp_path) / "l1" / "summary.md").read_text()


def test_a_new_model_runs_through_train_eval_and_vis(cifar_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(MODELS, "tiny_mlp", TinyMLP)  # the registry line
    run([*TRAIN, "--model", "tiny_mlp", "--layers", "hidden", *dirs(cifar_dir, tmp_path)], capsys)
    checkpoint = torch.load(tmp_path / "models" / "cifar10" / "tiny_mlp" / "l1_hidden_s0.01_seed0.pt", weights_only=True)
    assert checkpoint["metadata"]["recipe"]["model"] == "tiny_mlp"
    assert set(checkpoint["metadata"]["activation_sparsity"]) == {"hidden", "logits"}
    run([*EVAL, "--attacks", "pgd", "--layers", "hidden", *dirs(cifar_dir, tmp_path),
         "--results-dir", str(tmp_path / "results")], capsys)
    record = json.loads((tmp_path / "results" / "cifar10" / "tiny_mlp" / "l1_hidden_s0.01_seed0.json").read_text())
    assert record["checkpoint"]["metadata"]["recipe"]["model"] == "tiny_mlp" and record["spec"]["model"] == "tiny_mlp"
    out = run(["--mode", "vis", "--results-dir", str(tmp_path / "results")], capsys)
    summary = (tmp_path / "results" / "cifar10" / "tiny_mlp" / "l1" / "summary.md").read_text()
    assert "fig1_per_layer" in out and "| hidden (λ=0.01)" in summary


def test_a_new_sparsity_method_runs_through_train_eval_and_vis(cifar_dir, tmp_path, capsys, monkeypatch):
    method = L2ActivationPenalty("l2act", "L2 activation penalty", "μ", "L2 strength μ", 0.1, (0.01, 0.1, 1.0),
                                 log_scale=True)
    monkeypatch.setitem(METHODS, method.name, method)  # the registry line
    run([*TRAIN, "--method", "l2act", "--layers", "fc1", "--strength", "5", *dirs(cifar_dir, tmp_path)], capsys)
    assert (tmp_path / "models" / "cifar10" / "simple_cnn" / "l2act_fc1_s5_seed0.pt").exists()
    run([*EVAL, "--attacks", "pgd", "--method", "l2act", "--layers", "fc1", "--strength", "5",
         *dirs(cifar_dir, tmp_path), "--results-dir", str(tmp_path / "results")], capsys)
    run(["--mode", "vis", "--method", "l2act", "--results-dir", str(tmp_path / "results")], capsys)
    summary = (results(tmp_path) / "l2act" / "summary.md").read_text()
    assert "L2 activation penalty" in summary and "fc1 (μ=5)" in summary
    assert (results(tmp_path) / "l2act" / "fig1_per_layer.png").exists()


def test_a_new_method_that_masks_gradients_faces_the_bpda_search_and_the_adaptive_attacks(cifar_dir, tmp_path,
                                                                                         capsys, monkeypatch):
    """Declaring ``masks_gradients`` (and the straight-through backward) is all it takes: the eps* bisection attacks
    through it, and the adaptive attacks run, the transfer attack from the standard model trained the same way."""
    method = StaircaseMethod("staircase", "staircase activation", "s", "unused s", 1.0, (1.0,), log_scale=False)
    monkeypatch.setitem(METHODS, method.name, method)  # the registry line
    run([*TRAIN, "--method", "staircase", "--layers", "fc1", "--strength", "1", *dirs(cifar_dir, tmp_path)], capsys)
    run(["--mode", "eval", "--device", "cpu", "--method", "staircase", "--layers", "fc1", "--strength", "1",
         "--attacks", "pgd", "--n-eval", "6", "--steps", "3", "--check-n", "4", "--query-n", "3", "--fab-steps", "2",
         "--audit-radii", "0.03", "--audit-n", "3", "--adaptive-steps", "2", "--adaptive-schedule", "4@0",
         *dirs(cifar_dir, tmp_path), "--results-dir", str(tmp_path / "results")], capsys)
    record = json.loads((results(tmp_path) / "staircase_fc1_s1_seed0.json").read_text())
    adaptive = {entry["attack"] for entry in record["audit"]["adaptive"]}
    assert adaptive == {"bpda_identity", "nes_adaptive", "transfer"}
    assert record["audit"]["adaptive_skipped"] == ["bpda_relu: staircase offers no relu straight-through backward"]
    assert "through staircase activation with BPDA (identity)" in \
        record["minimal_perturbation"]["linf"]["settings"]["bisection_attack"]
    baseline = json.loads((results(tmp_path) / "standard_seed0.json").read_text())
    assert baseline["audit"]["adaptive"] == []  # the standard model masks nothing: no adaptive attack


def test_a_new_data_set_runs_through_train_eval_and_vis(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(DATASETS, TWO_TONE.name, TWO_TONE)  # the registry line
    run(["--mode", "train", "--dataset", "two-tone", "--layers", "fc1", "--epochs", "2", "--batch-size", "10",
         "--device", "cpu", *dirs(tmp_path / "unused", tmp_path)], capsys)
    checkpoint = torch.load(tmp_path / "models" / "two-tone" / "simple_cnn" / "l1_fc1_s0.01_seed0.pt",
                            weights_only=True)
    assert checkpoint["metadata"]["input_shape"] == [2, 20, 20] and checkpoint["metadata"]["num_classes"] == 3
    assert checkpoint["metadata"]["recipe"]["augment"] == "crop"
    run([*EVAL, "--attacks", "pgd", "--layers", "fc1", "--eps-sweep", *dirs(tmp_path / "unused", tmp_path),
         "--results-dir", str(tmp_path / "results")], capsys)
    record = json.loads((tmp_path / "results" / "two-tone" / "simple_cnn" / "l1_fc1_s0.01_seed0.json").read_text())
    assert record["spec"]["dataset"] == "two-tone" and record["eval_config"]["eps"] == 0.05
    assert record["eval_config"]["eps_sweep"] == [0.02, 0.05]
    out = run(["--mode", "vis", "--results-dir", str(tmp_path / "results")], capsys)
    assert "(Two-tone)" in out
    assert "Two-tone" in (tmp_path / "results" / "two-tone" / "simple_cnn" / "l1" / "summary.md").read_text()


@pytest.fixture(autouse=True)
def _no_leftover_registrations():
    before = (dict(ATTACKS), dict(MODELS), dict(METHODS), dict(DATASETS))
    yield
    assert (dict(ATTACKS), dict(MODELS), dict(METHODS), dict(DATASETS)) == before
