"""The pipeline on the real Fashion-MNIST files (Debian's dataset-fashion-mnist): a shortened version of its
converged recipe learns it, and an evaluation attacks it end to end. Skipped, naming the package, where the files are absent."""
import json
from pathlib import Path

import pytest

from cli_support import assert_usage_error, run_cli
from common.cli import run_main
from data.fashion_mnist import FILES
from main import main
from training.checkpoint import load_checkpoint

SYSTEM_FOLDER = Path(FILES.system_folders[0])
pytestmark = pytest.mark.skipif(
    not (SYSTEM_FOLDER / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason=f"real Fashion-MNIST is not in {SYSTEM_FOLDER}: apt-get install dataset-fashion-mnist")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Fashion-MNIST's converged recipe (batch 64, one-cycle learning rate to 0.06, no augmentation), shortened to
    500 images per class for 2 epochs (158 SGD steps instead of 2,814) and 100 test images per class (the data folder
    is empty: the files come from the system). Measured: 72.8% test accuracy, train loss 0.78 (1 thread, 182 s
    under a load of about 8); the threshold is 60% (chance is 10%). The full recipe's accuracy is in docs/data.md."""
    root = tmp_path_factory.mktemp("real-fashion")
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, ["--mode", "train", "--dataset", "fashion-mnist", "--baseline-only", "--device", "cpu",
                        "--train-per-class", "500", "--epochs", "2", "--test-per-class", "100", "--threads", "2",
                        "--data-dir", str(root / "data"), "--models-dir", str(root / "models")])
    assert exit_info.value.code == 0
    return root


def test_the_shortened_converged_recipe_learns_real_fashion_mnist(trained):
    metadata = load_checkpoint(trained / "models" / "fashion-mnist" / "simple_cnn" / "standard_seed0.pt")["metadata"]
    assert metadata["recipe"]["dataset"] == "fashion-mnist" and metadata["input_shape"] == [1, 28, 28]
    assert metadata["n_test"] == 1000 and metadata["classes"][0] == "T-shirt/top"
    recipe = metadata["recipe"]
    assert (recipe["train_per_class"], recipe["epochs"], recipe["batch_size"]) == (500, 2, 64)
    assert (recipe["schedule"], recipe["lr"], recipe["augment"], recipe["quick"]) == ("onecycle", 0.06, "none", False)
    assert metadata["clean_test_acc"] >= 0.60, metadata["clean_test_acc"]  # chance is 10%


def test_the_real_model_is_attacked_end_to_end(trained, capsys):
    status, out, err = run_cli(main, [
        "--mode", "eval", "--quick", "--baseline-only", "--attacks", "pgd", "square", "--n-eval", "50",
        "--query-n", "10", "--square-queries", "200", "--fab-steps", "10", "--audit-radii", "none", "--device", "cpu", "--threads", "2",
        "--data-dir", str(trained / "data"),
        "--models-dir", str(trained / "models"), "--results-dir", str(trained / "results")], capsys)
    assert status == 0, err
    record = json.loads((trained / "results" / "fashion-mnist" / "simple_cnn" / "standard_seed0.json").read_text())
    assert record["spec"]["dataset"] == "fashion-mnist" and record["eval_config"]["eps"] == 0.1
    pgd = record["attacks"]["pgd"]
    # eps 0.1 fools most of a standard model's correct images: PGD really flips predictions
    assert pgd["n"] == 50 and pgd["n_correct"] >= 25 and pgd["success_rate_correct"] >= 0.5
    assert record["attacks"]["square"]["n"] == 10
    # the smallest fooling perturbation of a standard model lies well inside the search limit (4 x eps)
    eps_star = record["minimal_perturbation"]["linf"]
    assert eps_star["n"] == 50 and eps_star["n_censored"] == 0 and 0 < eps_star["median"] <= 0.1, eps_star["median"]
    assert "standard_seed0: clean acc" in out and "plan: 1 of 1 tasks done, 0 done already, 0 failed" in out


def test_a_data_folder_of_another_data_set_exits_2_naming_the_file(tmp_path, capsys):
    status, _, err = run_cli(main, ["--mode", "train", "--quick", "--dataset", "mnist", "--baseline-only",
                                    "--data-dir", str(SYSTEM_FOLDER), "--models-dir", str(tmp_path)], capsys)
    assert_usage_error(status, err, str(SYSTEM_FOLDER), "is Fashion-MNIST's", "not MNIST's", "--data-dir")
    assert not list(tmp_path.rglob("*.pt"))
