"""experiments/fashion_mnist.py: every command it would run is one main.py accepts, and every arm's seeds are
declared up front, the same for every arm (nothing is added because of a result)."""
import importlib.util
from pathlib import Path

import pytest

from main import build_parser, eval_config_from_args, recipe_from_args, variants_from_args

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("fashion_mnist_study", ROOT / "experiments" / "fashion_mnist.py")
study = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(study)


def every_command(setup):
    return study.study_commands(setup) + study.figure_commands(setup)


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
            assert recipe_from_args(args).dataset == "fashion-mnist"
            trained |= {(variant.method, variant.name) for variant in variants}
        elif args.mode == "eval":
            config = eval_config_from_args(args, "fashion-mnist")
            assert config.eps == 0.1 and "autoattack" in config.attacks and config.minimal_norms
            assert {(variant.method, variant.name) for variant in variants} <= trained  # nothing evaluated that was not trained
    assert {("standard", "standard_seed2"), ("l1", "conv1_s0.01_seed0"), ("dropout", "fc1_s0.6_seed0"),
            ("kwta", "conv4_s0.05_seed0"), ("kwta", "fc1_s0.05_seed2")} <= trained
    assert len([name for _, name in trained if name.endswith("_seed0")]) == 1 + 3 * 3 * 2
    # the design: every arm and the baseline with the same declared seeds, at least 5 (issue 29)
    arms = {}
    for method, name in trained:
        arm, seed = name.rsplit("_seed", 1)
        arms.setdefault((method, arm), set()).add(int(seed))
    assert len(arms) == 1 + 3 * 3 * 2 and study.DESIGN_SEEDS >= 5
    assert all(seeds == set(range(study.DESIGN_SEEDS)) for seeds in arms.values())


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
            assert recipe_from_args(args).epochs == 100  # the original recipe
        elif args.mode == "eval":
            assert eval_config_from_args(args, "cifar10-jpeg").eps == 8 / 255
