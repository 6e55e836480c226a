"""experiments/fashion_mnist.py: every command it would run is one main.py accepts, and the seeds it adds follow
seed 0 against the baseline's pooled seeds only."""
import importlib.util
from pathlib import Path

import pytest

from evaluation.records import write_record
from main import build_parser, eval_config_from_args, recipe_from_args, variants_from_args
from sparsity.variants import Variant
from vis_fixture import minimal_from, result_document

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("fashion_mnist_study", ROOT / "experiments" / "fashion_mnist.py")
study = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(study)


def every_command(setup):
    return (study.first_commands(setup) + study.more_seeds_commands(setup, "kwta", "fc1", 0.05)
            + study.figure_commands(setup))


@pytest.mark.parametrize("setup", [study.CPU, study.GPU], ids=["cpu", "gpu"])
def test_every_step_is_a_valid_main_py_command(setup):
    commands = every_command(setup)
    assert all(command[0] == "main.py" for command in commands)
    trained = set()
    for command in commands:
        argv = command[1:]
        parser = build_parser()
        args = parser.parse_args(argv)
        parser.reject_other_modes(argv, args.mode)
        variants = variants_from_args(args)
        if args.mode == "train":
            assert recipe_from_args(args, "cpu").dataset == "fashion-mnist"
            trained |= {(variant.method, variant.name) for variant in variants}
        elif args.mode == "eval":
            config = eval_config_from_args(args, "fashion-mnist")
            assert config.eps == 0.1 and "autoattack" in config.attacks and config.minimal_norms
            assert {(variant.method, variant.name) for variant in variants} <= trained  # nothing evaluated that was not trained
    assert {("standard", "standard_seed2"), ("l1", "conv1_s0.01_seed0"), ("dropout", "fc1_s0.6_seed0"),
            ("kwta", "conv4_s0.05_seed0"), ("kwta", "fc1_s0.05_seed2")} <= trained
    assert len([name for _, name in trained if name.endswith("_seed0")]) == 1 + 3 * 3 * 2


def write(results_dir, method, variant, eps_star):
    document = result_document(method, variant, 0.9, {"conv1": 0.5}, {}, minimal={"linf": minimal_from(eps_star, 0.4)})
    write_record(variant.results_path(results_dir / "fashion-mnist", method), {**document, "dataset": "fashion-mnist"})


def test_more_seeds_go_to_variants_whose_seed0_median_is_outside_the_baselines_interval(tmp_path):
    # baseline medians: seed 0 0.0495 [0.042, 0.057]; seeds 0 and 1 pooled 0.0595 [0.054, 0.065]
    for seed, shift in ((0, 0.0), (1, 0.02)):
        write(tmp_path, "l1", Variant.baseline(seed), [0.02 + shift + 0.001 * i for i in range(60)])
    write(tmp_path, "l1", Variant("l1", "conv1", 0.01, 0), [0.1 + 0.001 * i for i in range(60)])  # outside
    write(tmp_path, "l1", Variant("l1", "conv4", 0.01, 0), [0.031 + 0.001 * i for i in range(60)])  # 0.0605: inside
    # the pooled interval, though outside seed 0's alone
    write(tmp_path, "l1", Variant("l1", "fc1", 0.01, 0), [0.03 + 0.001 * i for i in range(60)])  # inside on seed 0 ...
    write(tmp_path, "l1", Variant("l1", "fc1", 0.01, 1), [0.2 + 0.001 * i for i in range(60)])  # ... whatever seed 1 says
    assert study.differ_on_first_seed(tmp_path, "l1") == [("conv1", 0.01)]


def test_the_gpu_study_runs_on_the_cifar10_jpeg_copy_with_its_archive():
    setup = {**study.GPU, "dataset": "cifar10-jpeg", "data_dir": Path("/data/cifar10-jpeg.tar.gz")}
    for command in every_command(setup):
        argv = command[1:]
        parser = build_parser()
        args = parser.parse_args(argv)
        parser.reject_other_modes(argv, args.mode)
        assert args.dataset == "cifar10-jpeg"  # every mode names it: the GPU folders may hold both data sets
        if args.mode != "vis":
            assert args.data_dir == Path("/data/cifar10-jpeg.tar.gz")
        if args.mode == "train":
            assert recipe_from_args(args, "cpu").epochs == 100  # the original recipe
        elif args.mode == "eval":
            assert eval_config_from_args(args, "cifar10-jpeg").eps == 8 / 255
