"""The pipeline on CIFAR-10's real images (the JPEG copy, ``cifar10-jpeg``): a short training run learns them, and
an evaluation attacks the model end to end with eps*. Skipped, saying where the archive is looked for, where it is
absent.

The archive: ``$CIFAR10_JPEG`` (the archive or its folder) where set, else ``../shared/data/cifar10-jpeg/`` beside
the repository (this project's CI and machines). Its first read decodes all 60,000 images (about 15 s) into the
user's cache (the shared folder is read-only); every later run of the suite loads that in about 0.2 s.
"""
import json
import os
from pathlib import Path

import pytest

from cli_support import run_cli
from common.cli import run_main
from main import main
from training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
ARCHIVE = Path(os.environ.get("CIFAR10_JPEG") or SHARED)
pytestmark = pytest.mark.skipif(
    not ARCHIVE.exists(),
    reason=f"the CIFAR-10 JPEG copy is not at {ARCHIVE}: set CIFAR10_JPEG to cifar10-jpeg.tar.gz (or its folder)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The baseline on the first 100 training images of each class, 2 epochs at batch 16 and lr 0.05 without
    augmentation (126 SGD steps), measured on the first 50 test images of each class."""
    root = tmp_path_factory.mktemp("real-cifar10-jpeg")
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, ["--mode", "train", "--dataset", "cifar10-jpeg", "--baseline-only", "--device", "cpu",
                        "--threads", "1", "--train-per-class", "100", "--test-per-class", "50", "--epochs", "2",
                        "--batch-size", "16", "--lr", "0.05", "--augment", "none",
                        "--data-dir", str(ARCHIVE), "--models-dir", str(root / "models")])
    assert exit_info.value.code == 0
    return root


def test_brief_training_learns_real_cifar10_images(trained):
    metadata = load_checkpoint(trained / "models" / "cifar10-jpeg" / "standard_seed0.pt")["metadata"]
    assert metadata["recipe"]["dataset"] == "cifar10-jpeg" and metadata["input_shape"] == [3, 32, 32]
    assert metadata["n_train"] == 1000 and metadata["n_test"] == 500 and metadata["classes"][9] == "truck"
    # chance is 10%; on 500 held-out images 15% lies 3.7 binomial standard deviations above it
    assert metadata["clean_test_acc"] >= 0.15, metadata["clean_test_acc"]


def test_the_real_model_is_attacked_end_to_end_with_eps_star(trained, capsys):
    status, out, err = run_cli(main, [
        "--mode", "eval", "--baseline-only", "--attacks", "pgd", "--n-eval", "12", "--steps", "5", "--check-n", "12",
        "--minimal-norms", "linf", "--fab-steps", "5", "--device", "cpu", "--threads", "1",
        "--data-dir", str(ARCHIVE), "--models-dir", str(trained / "models"),
        "--results-dir", str(trained / "results")], capsys)
    assert status == 0, err
    record = json.loads((trained / "results" / "cifar10-jpeg" / "l1" / "standard_seed0.json").read_text())
    assert record["dataset"] == "cifar10-jpeg" and record["eval_config"]["eps"] == 8 / 255
    assert record["attacks"]["pgd"]["n"] == 12
    eps_star = record["minimal_perturbation"]["linf"]
    # a weak standard model is fooled by small perturbations: eps* lies inside the search limit for most images
    assert eps_star["n"] == 12 and eps_star["n_censored"] <= 2 and 0 < eps_star["median"] <= 8 / 255, eps_star
    assert "evaluation: 1 evaluated" in out
