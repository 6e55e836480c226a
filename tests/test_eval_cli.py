"""python main.py --mode eval / vis on generated data: result files, one store, and exit 2 on bad input."""
import contextlib
import csv
import io
import json
import shutil

import pytest
import torch

from cli_support import assert_usage_error, run_cli
from common.cli import run_main
from evaluation.checks import check
from main import main
from models.spec import ModelSpec

TRAIN = ["--classes", "0", "1", "--epochs", "1", "--batch-size", "16", "--train-per-class", "16",
         "--test-per-class", "5", "--device", "cpu"]
# Short attacks: the numbers are real, only the budgets (samples, steps, queries) are small.
EVAL = ["--device", "cpu", "--n-eval", "12", "--steps", "5", "--query-n", "4", "--square-queries", "50",
        "--nes-steps", "3", "--nes-samples", "5", "--check-n", "8", "--minimal-norms", "none"]
# the one evaluation that also measures eps* (L-inf; FAB shortened as the attacks are)
MINIMAL = ["--minimal-norms", "linf", "--fab-steps", "3", "--audit-radii", "none"]  # the audit: test_eps_star.py
ATTACK_KEYS = ("pgd", "autoattack", "square", "nes_untargeted_m0", "nes_untargeted_m0.9", "nes_targeted_m0",
               "nes_targeted_m0.9")


def run(argv, capsys):
    return run_cli(main, argv, capsys)


@pytest.fixture(scope="module")
def models_dir(cifar_dir, tmp_path_factory):
    """The baseline and L1 at conv3 and fc1, trained for one epoch on two generated classes."""
    folder = tmp_path_factory.mktemp("models")
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, ["--mode", "train", *TRAIN, "--layers", "conv3", "fc1",
                        "--data-dir", str(cifar_dir), "--models-dir", str(folder)])
    assert exit_info.value.code == 0
    return folder


def dirs(cifar_dir, models_dir, results_dir):
    return ["--data-dir", str(cifar_dir), "--models-dir", str(models_dir), "--results-dir", str(results_dir)]


@pytest.fixture(scope="module")
def evaluated(cifar_dir, models_dir, tmp_path_factory):
    """(results dir, stdout) of one eval of the three trained models with every attack."""
    folder = tmp_path_factory.mktemp("results")
    stdout = io.StringIO()
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(stdout):
        run_main(main, ["--mode", "eval", *EVAL, *MINIMAL, "--layers", "conv3", "fc1",
                        *dirs(cifar_dir, models_dir, folder)])
    assert exit_info.value.code == 0
    return folder, stdout.getvalue()


def test_eval_writes_one_result_per_model_and_a_summary(evaluated):
    tmp_path, out = evaluated
    assert "plan: 3 of 3 tasks done, 0 done already, 0 failed" in out
    folder = tmp_path / "cifar10" / "simple_cnn"
    assert out.strip().splitlines()[-1] == (f"evaluation: results in {folder} (summary.csv lists every model "
                                            f"there)")
    for name, method in (("standard_seed0", "standard"), ("l1_conv3_s0.01_seed0", "l1"), ("l1_fc1_s0.01_seed0", "l1")):
        assert f"{name}: clean acc" in out
        record = json.loads((folder / f"{name}.json").read_text())
        assert record["spec"]["name"] == name and record["spec"]["method"] == method
        assert record["spec"]["dataset"] == "cifar10" and record["spec"]["model"] == "simple_cnn"
        assert 0 <= record["clean_acc"] <= 1 and record["n_test"] == 40
        assert set(record["activation_sparsity"]) == {"conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"}
        assert set(record["attacks"]) == set(ATTACK_KEYS)
        pgd = record["attacks"]["pgd"]
        assert pgd["n"] == 12 and pgd["success_rate_all"] == pytest.approx(pgd["n_success"] / 12)
        assert round(pgd["robust_acc"] * 12) <= pgd["n_correct"]
        assert record["attacks"]["autoattack"]["n"] == 12 and record["attacks"]["autoattack"]["reference"]
        for key in ATTACK_KEYS[2:]:
            queried = record["attacks"][key]
            assert queried["n"] == 4 and "median_queries_correct" in queried and "mean_queries_all" in queried
        assert [check["name"] for check in record["checks"]] == [
            "pgd_eps1_success", "robust_acc_monotone_in_eps", "black_box_not_stronger_than_white_box",
            "white_box_attacks_agree", "zero_input_gradients", "minimal_perturbation_methods_agree",
            "eps_star_matches_autoattack"]
        assert record["schema_version"] == 5 and record["audit"]["radii"] == []  # --audit-radii none
        assert record["checkpoint"]["metadata"]["status"] == "complete"
        # the machines that trained and evaluated it (the same here): what a bit-identical rerun needs alike
        for machine in (record["machine"], record["checkpoint"]["metadata"]["machine"]):
            assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and machine["cpu"]
        minimal = record["minimal_perturbation"]["linf"]
        assert minimal["n"] == 12 and len(minimal["eps_star"]) == 12 and minimal["limit"] == pytest.approx(4 * 8 / 255)
        wrong = [i for i, method in enumerate(minimal["method"]) if method == "clean"]
        assert len(wrong) == 12 - pgd["n_correct"] and all(minimal["eps_star"][i] == 0 for i in wrong)
        assert minimal["curve"][0]["robust_acc"] == pytest.approx(pgd["n_correct"] / 12)
    with open(folder / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["name"] for row in rows] == ["standard_seed0", "l1_conv3_s0.01_seed0", "l1_fc1_s0.01_seed0"]
    assert [(row["dataset"], row["architecture"], row["method"], row["layer"], row["training"]) for row in rows] == [
        ("cifar10", "simple_cnn", "standard", "", "standard"), ("cifar10", "simple_cnn", "l1", "conv3", "standard"),
        ("cifar10", "simple_cnn", "l1", "fc1", "standard")]
    assert all(row["eps_star_linf_n"] == "12" for row in rows)


def test_models_evaluated_in_separate_processes_merge(cifar_dir, models_dir, tmp_path, capsys):
    common = ["--mode", "eval", *EVAL, "--attacks", "pgd", "--no-baseline", *dirs(cifar_dir, models_dir, tmp_path)]
    folder = tmp_path / "cifar10" / "simple_cnn"
    assert run([*common, "--layers", "conv3"], capsys)[0] == 0
    first = (folder / "l1_conv3_s0.01_seed0.json").read_bytes()
    assert run([*common, "--layers", "fc1"], capsys)[0] == 0
    assert (folder / "l1_conv3_s0.01_seed0.json").read_bytes() == first
    with open(folder / "summary.csv", newline="") as handle:
        assert [row["name"] for row in csv.DictReader(handle)] == ["l1_conv3_s0.01_seed0", "l1_fc1_s0.01_seed0"]


def test_a_baseline_evaluated_with_one_method_is_not_evaluated_again_for_another(evaluated, cifar_dir, models_dir,
                                                                                tmp_path, capsys):
    """One record per model: the baseline that l1's models are compared with is dropout's too (no copy)."""
    shutil.copytree(evaluated[0], tmp_path, dirs_exist_ok=True)
    record = tmp_path / "cifar10" / "simple_cnn" / "standard_seed0.json"
    before = record.read_bytes()
    code, out, _ = run(["--mode", "eval", *EVAL, *MINIMAL, "--dropout", "--baseline-only",
                        *dirs(cifar_dir, models_dir, tmp_path)], capsys)
    assert code == 0 and "plan: 0 of 0 tasks done, 1 done already, 0 failed" in out
    assert record.read_bytes() == before
    assert sorted(path.name for path in (tmp_path / "cifar10").rglob("*.json")) == [
        "l1_conv3_s0.01_seed0.json", "l1_fc1_s0.01_seed0.json", "standard_seed0.json"]


def test_eval_is_reproducible_under_a_seed(cifar_dir, models_dir, tmp_path, capsys):
    argv = ["--mode", "eval", *EVAL, "--layers", "conv3", "--no-baseline"]
    for folder in ("a", "b"):
        assert run([*argv, *dirs(cifar_dir, models_dir, tmp_path / folder)], capsys)[0] == 0
    first, second = (json.loads((tmp_path / f / "cifar10" / "simple_cnn" / "l1_conv3_s0.01_seed0.json").read_text())
                     for f in "ab")
    assert first["attacks"] == second["attacks"]


def test_missing_checkpoints_are_skipped_with_the_train_command(cifar_dir, models_dir, tmp_path, capsys):
    status, _, err = run(["--mode", "eval", *EVAL, "--attacks", "pgd", "--layers", "conv3", "conv4",
                          "--no-baseline", *dirs(cifar_dir, models_dir, tmp_path)], capsys)
    assert status == 0
    assert "warning: no checkpoint of l1_conv4_s0.01_seed0" in err
    assert (f"python main.py --mode train --layers conv4 --strength 0.01 --no-baseline --seed 0 "
            f"--data-dir {cifar_dir} --models-dir {models_dir}") in err
    assert (tmp_path / "cifar10" / "simple_cnn" / "l1_conv3_s0.01_seed0.json").exists()
    assert not (tmp_path / "cifar10" / "simple_cnn" / "l1_conv4_s0.01_seed0.json").exists()


def test_no_checkpoint_at_all_exits_2_naming_the_train_command(cifar_dir, tmp_path, capsys):
    status, _, err = run(["--mode", "eval", *EVAL, "--dropout", *dirs(cifar_dir, tmp_path / "none", tmp_path)],
                         capsys)
    assert_usage_error(status, err, "no finished checkpoint", "python main.py --mode train --baseline-only")


def test_corrupt_checkpoint_exits_2_naming_it_and_is_left_alone(cifar_dir, models_dir, tmp_path, capsys):
    broken = tmp_path / "models"
    shutil.copytree(models_dir, broken)
    path = ModelSpec("l1", "fc1", 0.01, 0).checkpoint_path(broken)
    path.write_bytes(b"not a checkpoint")
    status, _, err = run(["--mode", "eval", *EVAL, "--layers", "fc1", *dirs(cifar_dir, broken, tmp_path)], capsys)
    assert_usage_error(status, err, str(path))
    assert path.read_bytes() == b"not a checkpoint"
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize("flags, fragment", [
    (["--eps", "-1"], "--eps must be >= 0"),
    (["--eps", "eight"], "not a number or a fraction"),
    (["--nes-momenta", "1"], "--nes-momenta must be < 1"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--attacks", "fgsm"], "invalid choice"),
    (["--eps", "inf"], "--eps must be a finite number"),
    (["--eps", "nan"], "--eps must be a finite number"),
    (["--alpha=-1/255"], "--alpha must be > 0"),
    (["--nes-sigma", "inf"], "--nes-sigma must be a finite number"),
    (["--square-queries", "0"], "--square-queries must be at least 1"),
    (["--eps-sweep", "0", "8/255"], "--eps-sweep must be > 0"),
    (["--eps-sweep", "2/255", "2/255"], "--eps-sweep lists"),
    (["--eps", "1e9"], "--eps must be <= 1"),
    (["--query-batch", "3"], "--query-batch must be even"),
    (["--layers", "conv9"], "unknown layer 'conv9'"),
    (["--nes-loss", "hinge"], "invalid choice: 'hinge'"),
    (["--adaptive-schedule", "100@0", "50@10"], "--adaptive-schedule must increase in both step and samples"),
    (["--adaptive-schedule", "100@0", "200@0"], "--adaptive-schedule must increase in both step and samples"),
    (["--adaptive-schedule", "100@5"], "--adaptive-schedule must start at step 0"),
    (["--adaptive-schedule", "0@0"], "--adaptive-schedule must be at least 1"),
    (["--adaptive-schedule", "many"], "is not SAMPLES@STEP"),
    (["--adaptive-steps", "0"], "--adaptive-steps must be at least 1"),
    (["--minimal-limit", "0"], "--minimal-limit must be > 0"),
    (["--minimal-limit=-0.1"], "--minimal-limit must be > 0"),
    (["--minimal-limit", "2"], "--minimal-limit must be <= 1"),
    (["--minimal-norms", "none", "linf"], "--minimal-norms none turns the measure off; give it alone"),
    (["--minimal-norms", "l1"], "invalid choice: 'l1'"),
    (["--fab-steps", "0"], "--fab-steps must be at least 1"),
    (["--audit-radii", "0"], "--audit-radii must be positive"),
    (["--audit-radii=-0.5x"], "--audit-radii must be positive"),
    (["--audit-radii", "wide"], "--audit-radii has 'wide', which is neither an eps"),
    (["--audit-radii", "none", "1x"], "--audit-radii none turns it off; give it alone"),
    (["--adaptive-attacks", "bpda_sigmoid"], "--adaptive-attacks has unknown adaptive attack 'bpda_sigmoid'"),
    (["--fab-restarts", "0"], "--fab-restarts must be at least 1"),
    (["--audit-n", "0"], "--audit-n must be at least 1"),
])
def test_bad_eval_input_exits_2(cifar_dir, models_dir, tmp_path, capsys, flags, fragment):
    status, _, err = run(["--mode", "eval", *EVAL, *flags, *dirs(cifar_dir, models_dir, tmp_path)], capsys)
    assert_usage_error(status, err, fragment)


def test_vis_draws_what_eval_wrote(evaluated, tmp_path, capsys):
    shutil.copytree(evaluated[0], tmp_path, dirs_exist_ok=True)
    status, out, _ = run(["--mode", "vis", "--layers", "[conv3,fc1]", "--results-dir", str(tmp_path)], capsys)
    assert status == 0 and out.startswith("vis: wrote")
    # vis is being rewritten (issue 41): only that it draws from the store eval wrote
    folder = tmp_path / "cifar10" / "simple_cnn" / "l1"
    assert any(path.read_bytes().startswith(b"\x89PNG") for path in folder.glob("*.png"))
    assert "standard" in (folder / "summary.md").read_text()


def test_vis_without_results_exits_2_naming_the_eval_command(tmp_path, capsys):
    status, _, err = run(["--mode", "vis", "--dropout", "--results-dir", str(tmp_path)], capsys)
    assert_usage_error(status, err, "python main.py --mode eval --method dropout")


def test_vis_with_malformed_results_exits_2_and_keeps_the_file(tmp_path, capsys):
    bad = tmp_path / "cifar10" / "simple_cnn" / "l1_conv3_s0.01_seed0.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    status, _, err = run(["--mode", "vis", "--results-dir", str(tmp_path)], capsys)
    assert_usage_error(status, err, str(bad))
    assert bad.read_text() == "{not json"


def test_a_failed_check_prints_as_one_warning_line_not_a_python_warning(capsys):
    def failing(argv):
        check("white_box_attacks_agree", "failed", "pgd 0.6 vs lowest 0.2")
        return 0

    status, _, err = run_cli(failing, [], capsys)
    assert status == 0
    assert err == "warning: sanity check white_box_attacks_agree failed: pgd 0.6 vs lowest 0.2\n"
