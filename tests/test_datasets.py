"""Data sets as records: the registry, the idx reader, models sized by their data, data set identity in every
file, and exit 2 for every data set mix-up (generated idx files; real Fashion-MNIST in test_real_data.py)."""
import dataclasses
import gzip
import hashlib
import json
import shutil
import urllib.error

import matplotlib.figure
import pytest
import torch
import torchvision.datasets.utils

import data.fashion_mnist
import data.idx
import data.mnist
from cli_support import assert_usage_error, run_cli
from common.cli import run_main
from common.errors import FileProblem
from cli_support import visible_lines
from data.registry import DATASETS, get_dataset
from evaluation.config import EvalConfig
from idx_fixture import IMAGES_MAGIC, NAMES, idx_bytes, make_idx_fixture
from main import main
from models import build_model
from models.spec import ModelSpec
from records.store import ResultStore
from training.checkpoint import FORMAT_VERSION, checkpoint_spec, load_checkpoint, load_model
from training.recipe import Recipe
from vis.report import make_figures

TRAIN = ["--mode", "train", "--classes", "0", "5", "--epochs", "6", "--batch-size", "10", "--lr", "0.05",
         "--device", "cpu"]
EVAL = ["--mode", "eval", "--device", "cpu", "--attacks", "pgd", "--n-eval", "20", "--steps", "5", "--check-n", "8",
        "--minimal-norms", "linf", "--fab-steps", "3", "--audit-radii", "none"]


def run(argv, capsys):
    status, out, err = run_cli(main, argv, capsys)
    assert status == 0, err
    return out


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory):
    """A --data-dir holding generated Fashion-MNIST-shaped idx files in its fashion-mnist/ folder."""
    root = tmp_path_factory.mktemp("idx")
    make_idx_fixture(root / "fashion-mnist")
    return root


@pytest.fixture
def offline(monkeypatch):
    """No network and no operating-system copy of the data sets."""
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", unreachable)
    searched = data.idx.IdxSource.candidate_folders

    def without_system_folders(source, data_dir):  # the readers hold their source: patch where folders are listed
        return tuple(folder for folder in searched(source, data_dir) if str(folder) not in source.system_folders)

    monkeypatch.setattr(data.idx.IdxSource, "candidate_folders", without_system_folders)


# --- the records --------------------------------------------------------------------------------------

def test_every_data_set_states_its_budget_in_its_own_units():
    assert get_dataset("cifar10").format_eps(8 / 255) == "8/255"
    assert get_dataset("fashion-mnist").format_eps(0.1) == "0.1"
    assert (get_dataset("fashion-mnist").eps, get_dataset("mnist").eps) == (0.1, 0.3)
    for dataset in DATASETS.values():
        assert dataset.eps in dataset.eps_sweep and dataset.num_classes == len(dataset.class_names) == 10
    # a mirror changes a digit: MNIST trains without the flip
    assert get_dataset("mnist").augment == "crop" and get_dataset("cifar10").augment == "standard"


def test_defaults_follow_the_data_set_and_explicit_options_win():
    config = EvalConfig.from_options(dataset="fashion-mnist")
    assert (config.eps, config.alpha) == (0.1, 0.01)
    assert EvalConfig.from_options(dataset="fashion-mnist", eps=0.2).eps == 0.2
    assert EvalConfig.from_options(dataset="cifar10").eps == 8 / 255
    recipe = Recipe.from_options(dataset="mnist", quick=True)
    assert recipe.classes == tuple(range(10)) and recipe.augment == "crop" and recipe.dataset == "mnist"
    assert Recipe.from_options(dataset="mnist", augment="none").augment == "none"


def test_simple_cnn_is_sized_by_its_input_and_keeps_cifar_weights_shapes():
    grey = build_model("simple_cnn", (1, 28, 28), 10)
    assert grey(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert grey.conv1.weight.shape == (64, 1, 3, 3) and grey.fc1.weight.shape == (256, 128 * 4 * 4)
    colour = build_model("simple_cnn", (3, 32, 32), 10)
    assert colour.conv1.weight.shape == (64, 3, 3, 3) and colour.fc1.weight.shape == (256, 3200)


# --- the idx reader ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout, gz", [("fashion-mnist", True), ("FashionMNIST/raw", False), (".", True)])
def test_idx_files_are_read_from_every_usual_folder_gzipped_or_not(tmp_path, layout, gz):
    make_idx_fixture(tmp_path / layout, n_train_per_class=3, n_test_per_class=2, gz=gz)
    images = data.fashion_mnist.FASHION_MNIST.read(tmp_path, download=False)
    assert images.train_x.shape == (30, 1, 28, 28) and images.train_x.dtype == torch.uint8
    assert images.test_y.tolist().count(9) == 2 and images.classes[9] == "Ankle boot"


@pytest.mark.parametrize("name, damage, fragment", [
    ("train-images-idx3-ubyte", lambda raw: raw[:-100], "truncated"),
    ("t10k-labels-idx1-ubyte", lambda raw: b"\x00\x00\x08\x03" + raw[4:], "no idx label header"),
    ("t10k-images-idx3-ubyte", lambda raw: idx_bytes(torch.zeros(20, 32, 32).numpy(), IMAGES_MAGIC),
     "images are 32x32"),
])
def test_truncated_or_foreign_idx_files_exit_2_naming_them(tmp_path, capsys, name, damage, fragment):
    folder = make_idx_fixture(tmp_path / "data" / "fashion-mnist", n_train_per_class=2, n_test_per_class=2)
    path = folder / f"{name}.gz"
    path.write_bytes(gzip.compress(damage(gzip.decompress(path.read_bytes()))))
    status, _, err = run_cli(main, [*TRAIN, "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "data"),
                                    "--models-dir", str(tmp_path / "models")], capsys)
    assert_usage_error(status, err, str(path), fragment, "--data-dir")
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").rglob("*.pt"))


def test_another_data_sets_official_files_are_refused_by_their_fingerprint(tmp_path):
    folder = make_idx_fixture(tmp_path / "mnist", n_train_per_class=2, n_test_per_class=1)
    content = gzip.decompress((folder / f"{NAMES[1]}.gz").read_bytes())
    fingerprint = ((NAMES[1], hashlib.sha256(content).hexdigest()),)
    pretend = dataclasses.replace(data.fashion_mnist.FILES, content_sha256=fingerprint)
    with pytest.raises(FileProblem, match=r"is Fashion-MNIST's train-labels-idx1-ubyte, not MNIST's"):
        data.idx.read_idx_dataset(data.mnist.FILES, tmp_path, False, others=(pretend,))


def test_missing_data_offline_exits_2_naming_the_files_the_package_and_the_flag(tmp_path, capsys, offline):
    status, _, err = run_cli(main, [*TRAIN, "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "none"),
                                    "--models-dir", str(tmp_path / "models")], capsys)
    assert_usage_error(status, err, "Fashion-MNIST is not in", "train-images-idx3-ubyte.gz",
                       "t10k-labels-idx1-ubyte.gz", "apt-get install dataset-fashion-mnist", "--data-dir")


def test_a_partial_folder_names_the_missing_files(tmp_path, capsys):
    folder = make_idx_fixture(tmp_path / "fashion-mnist", n_train_per_class=2, n_test_per_class=1)
    (folder / f"{NAMES[3]}.gz").unlink()
    with pytest.raises(FileProblem, match="not t10k-labels-idx1-ubyte"):
        data.fashion_mnist.FASHION_MNIST.read(tmp_path, download=False)


# --- train, eval and vis on a grey 28x28 data set ------------------------------------------------------

@pytest.fixture(scope="module")
def fashion_run(fashion_dir, tmp_path_factory):
    """Train the baseline and L1 at fc1 on the generated Fashion-MNIST files, evaluate and plot them."""
    root = tmp_path_factory.mktemp("fashion-run")
    dirs = ["--data-dir", str(fashion_dir), "--models-dir", str(root / "models")]
    for argv in ([*TRAIN, "--dataset", "fashion-mnist", "--layers", "fc1", *dirs],
                 [*EVAL, "--layers", "fc1", "--eps-sweep", *dirs, "--results-dir", str(root / "results")],
                 ["--mode", "vis", "--results-dir", str(root / "results")]):
        with pytest.raises(SystemExit) as exit_info:
            run_main(main, argv)
        assert exit_info.value.code == 0
    return root


def test_fashion_mnist_is_named_in_every_output(fashion_run):
    root = fashion_run
    spec = ModelSpec("l1", "fc1", 0.01, 0, dataset="fashion-mnist")
    path = root / "models" / "fashion-mnist" / "simple_cnn" / "l1_fc1_s0.01_seed0.pt"
    assert spec.checkpoint_path(root / "models") == path
    checkpoint = load_checkpoint(path)
    metadata = checkpoint["metadata"]
    assert metadata["format_version"] == FORMAT_VERSION and metadata["recipe"]["dataset"] == "fashion-mnist"
    assert metadata["spec"]["dataset"] == "fashion-mnist" and checkpoint_spec(checkpoint) == spec
    assert metadata["input_shape"] == [1, 28, 28] and metadata["classes"][0] == "T-shirt/top"
    assert checkpoint["state_dict"]["conv1.weight"].shape == (64, 1, 3, 3)
    results = root / "results" / "fashion-mnist" / "simple_cnn"
    assert ResultStore(root / "results").path(spec) == results / "l1_fc1_s0.01_seed0.json"
    record = json.loads((results / "l1_fc1_s0.01_seed0.json").read_text())
    assert record["spec"]["dataset"] == "fashion-mnist"
    # the data set's budget, step and sweep, not CIFAR-10's
    assert record["eval_config"]["eps"] == 0.1 and record["eval_config"]["alpha"] == 0.01
    assert [point["eps"] for point in record["robustness_curves"]["pgd"]] == [0.02, 0.05, 0.1, 0.15, 0.2]
    header, first = (results / "summary.csv").read_text().splitlines()[:2]
    assert header.startswith("dataset,") and first.startswith("fashion-mnist,simple_cnn,standard_seed0,")
    # vis (being rewritten, issue 41): its summary names the data set and its budgets
    summary = (results / "l1" / "summary.md").read_text()
    assert summary.startswith("# Results on Fashion-MNIST") and "eps 0.15" in summary and "/255" not in summary
    assert list((results / "l1").glob("*.png")) and list((results / "l1").glob("*.pdf"))


def test_figures_name_the_data_set(fashion_run):

    texts = []
    original = matplotlib.figure.Figure.savefig

    def capture(figure, *args, **kwargs):
        texts.extend(t.get_text() for t in figure.texts)
        return original(figure, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matplotlib.figure.Figure, "savefig", capture)
        make_figures(fashion_run / "results", "fashion-mnist", "l1")
    assert sum("Data set: Fashion-MNIST" in t for t in texts) >= 4  # fig1, fig4 and fig5, each png and pdf


def test_eval_and_vis_take_the_data_set_from_the_files(fashion_run, capsys):
    out = run(["--mode", "vis", "--results-dir", str(fashion_run / "results")], capsys)
    assert "(Fashion-MNIST)" in out


def names_both_data_sets(err, path):
    """The one error line names the checkpoint's data set and the one asked for, apart from the path (which
    holds cifar10 anyway)."""
    line = visible_lines(err)[0].replace(str(path), "PATH")
    return (("fashion-mnist" in line or "Fashion-MNIST" in line) and ("cifar10" in line or "CIFAR-10" in line), line)


def test_a_checkpoint_of_another_data_set_is_refused_naming_both(fashion_run, cifar_dir, tmp_path, capsys):
    models = tmp_path / "models"
    shutil.copytree(fashion_run / "models", models)
    cifar = ModelSpec.baseline_of(0).checkpoint_path(models)
    cifar.parent.mkdir(parents=True)
    shutil.copy(ModelSpec.baseline_of(0, dataset="fashion-mnist").checkpoint_path(models), cifar)
    status, _, err = run_cli(main, [*EVAL, "--dataset", "cifar10", "--baseline-only", "--data-dir", str(cifar_dir),
                                    "--models-dir", str(models), "--results-dir", str(tmp_path / "r")], capsys)
    assert_usage_error(status, err, str(cifar), "holds standard_seed0 of fashion-mnist (simple_cnn)")
    assert not list((tmp_path / "r").rglob("*.json"))
    named, line = names_both_data_sets(err, cifar)
    assert named, line
    # retraining into that folder refuses it the same way, and leaves it alone
    before = cifar.read_bytes()
    status, _, err = run_cli(main, [*TRAIN, "--baseline-only", "--classes", "0", "1", "--data-dir", str(cifar_dir),
                                    "--models-dir", str(models)], capsys)
    assert_usage_error(status, err, str(cifar), "holds standard_seed0 of fashion-mnist (simple_cnn)", "--force")
    assert cifar.read_bytes() == before
    named, line = names_both_data_sets(err, cifar)
    assert named, line


def test_a_results_folder_mixing_data_sets_is_refused(fashion_run, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(fashion_run / "results", results)
    path = results / "fashion-mnist" / "simple_cnn" / "standard_seed0.json"
    record = json.loads(path.read_text())
    record["spec"]["dataset"] = "mnist"
    record["checkpoint"]["metadata"]["recipe"]["dataset"] = "mnist"
    path.write_text(json.dumps(record))
    status, _, err = run_cli(main, ["--mode", "vis", "--results-dir", str(results)], capsys)
    assert_usage_error(status, err, str(path), "holds mnist simple_cnn model standard_seed0",
                       str(results / "mnist" / "simple_cnn" / "standard_seed0.json"))


def test_folders_of_several_data_sets_need_dataset_to_choose(fashion_run, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(fashion_run / "results" / "fashion-mnist", results / "fashion-mnist")
    shutil.copytree(fashion_run / "results" / "fashion-mnist", results / "mnist")
    status, _, err = run_cli(main, ["--mode", "vis", "--results-dir", str(results)], capsys)
    assert_usage_error(status, err, "several data sets (fashion-mnist, mnist)", "--dataset")
    out = run(["--mode", "vis", "--dataset", "fashion-mnist", "--results-dir", str(results)], capsys)
    assert "fashion-mnist" in out


@pytest.mark.parametrize("argv, fragment", [
    (["--dataset", "imagenet"], "argument --dataset: invalid choice: 'imagenet'"),
    (["--dataset", "fashion-mnist", "--classes", "10"], "Fashion-MNIST class indices are 0..9"),
])
def test_bad_data_set_options_exit_2_before_any_work(argv, fragment, tmp_path, capsys):
    status, _, err = run_cli(main, [*TRAIN, *argv, "--data-dir", str(tmp_path), "--models-dir", str(tmp_path / "m")],
                             capsys)
    assert_usage_error(status, err, fragment)
    assert not (tmp_path / "m").exists()


# --- checkpoints of the format before the model spec ---------------------------------------------------

def test_a_format_3_checkpoint_is_read_as_its_recipes_data_set_and_model(fashion_run, fashion_dir, tmp_path, capsys):
    """Format 3 named its model by a variant without data set and architecture (both in its recipe): it loads as
    that spec, train skips it as complete, and eval evaluates it."""
    models = tmp_path / "models"
    shutil.copytree(fashion_run / "models", models)
    spec = ModelSpec.baseline_of(0, dataset="fashion-mnist")
    path = spec.checkpoint_path(models)
    checkpoint = torch.load(path, weights_only=True)
    metadata = checkpoint["metadata"]
    metadata["format_version"] = 3
    metadata["variant"] = {key: value for key, value in metadata.pop("spec").items()
                           if key not in ("dataset", "model")} | {"name": "standard_seed0"}
    torch.save(checkpoint, path)
    assert checkpoint_spec(load_checkpoint(path)) == spec
    model = load_model(path)
    assert model.checkpoint_metadata["spec"] == spec.to_record() and not model.training
    dirs = ["--data-dir", str(fashion_dir), "--models-dir", str(models)]
    out = run([*TRAIN, "--dataset", "fashion-mnist", "--baseline-only", *dirs], capsys)
    assert "plan: 0 of 0 tasks done, 1 done already" in out
    out = run([*EVAL, "--baseline-only", *dirs, "--results-dir", str(tmp_path / "results")], capsys)
    assert "standard_seed0: clean acc" in out
    assert ResultStore(tmp_path / "results").get(spec).spec == spec
