"""--launcher slurm against a real Slurm scheduler (through submitit): one job array per wave of tasks, the same files
and numbers as the local launcher, waiting and reporting, reruns, failures, requeueing, and bad input.

The tests that submit jobs need a running cluster (CI starts a one-node one with
.ci/slurm-up.sh and exports SLURM_CONF); elsewhere they skip, saying why.
"""
import contextlib
import csv
import io
import json
import shutil
import subprocess
import time

import pytest
import torch

from cli_support import assert_usage_error, run_cli, visible_lines
from common.cli import run_main
from main import main
from models.spec import ModelSpec
from planner.slurm import FOLDER, TICKETS, queued
from records.store import ResultStore
from training.checkpoint import load_checkpoint


def slurm_missing():
    """Why jobs cannot be submitted here, or None."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH (Debian: apt-get install slurm-wlm munge, then .ci/slurm-up.sh DIR as root)"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return ("no Slurm controller answers scontrol ping (start one as root with .ci/slurm-up.sh DIR, then "
                "export SLURM_CONF=DIR/slurm.conf)")
    return None


SLURM_MISSING = slurm_missing()
needs_slurm = pytest.mark.skipif(SLURM_MISSING is not None, reason=str(SLURM_MISSING))

# --quick cut to two classes, one SGD step per epoch and a few attack steps: real runs, small budgets.
TRAIN = ["--quick", "--classes", "0", "1", "--epochs", "2", "--train-per-class", "16", "--test-per-class", "10"]
# the audit at a multiple of the baseline's median eps*: the baseline's evaluation runs first
EVAL = ["--quick", "--audit-radii", "2x", "--audit-n", "4", "--attacks", "pgd", "--n-eval", "8", "--check-n", "8",
        "--fab-steps", "3"]
SLURM = ["--launcher", "slurm", "--cpus-per-task", "1"]  # the test cluster's cores are shared
LAYERS = ["--layers", "conv2", "fc1"]
SPECS = (ModelSpec.baseline_of(0, dataset="cifar10"), ModelSpec("l1", "conv2", 0.01, 0, dataset="cifar10"),
         ModelSpec("l1", "fc1", 0.01, 0, dataset="cifar10"))
NAMES = " ".join(spec.name for spec in SPECS)


def dirs(data, models, results=None):
    return ["--data-dir", str(data), "--models-dir", str(models)] + (["--results-dir", str(results)] if results else [])


def run_captured(argv):
    """(exit status, stdout, stderr) of ``main.py argv`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        run_main(main, argv)
    return exit_info.value.code, out.getvalue(), err.getvalue()


def job_of(line):
    """The array's job id in ``slurm: submitted job array 12: ...``."""
    return line.split("job array ", 1)[1].split(":")[0]


@pytest.fixture(scope="module")
def study(cifar_dir, tmp_path_factory):
    """The study queued in one go: train without waiting, then eval --wait, whose arrays wait for the training
    tasks. Returns (models root, results root, {mode: (status, stdout, stderr)})."""
    if SLURM_MISSING:
        pytest.skip(SLURM_MISSING)
    models, results = tmp_path_factory.mktemp("slurm-models"), tmp_path_factory.mktemp("slurm-results")
    resources = ["--max-running", "2", "--time", "10", "--mem", "500M"]
    runs = {"train": run_captured(["--mode", "train", *TRAIN, *SLURM, *resources, *LAYERS, *dirs(cifar_dir, models)]),
            "eval": run_captured(["--mode", "eval", *EVAL, *SLURM, *LAYERS, "--wait",
                                  *dirs(cifar_dir, models, results)])}
    return models, results, runs


@pytest.fixture(scope="module")
def local(cifar_dir, tmp_path_factory):
    """The same study with the local launcher, on one thread like the tasks (--cpus-per-task 1)."""
    models, results = tmp_path_factory.mktemp("local-models"), tmp_path_factory.mktemp("local-results")
    for argv in (["--mode", "train", *TRAIN, *LAYERS, "--device", "cpu", "--threads", "1", *dirs(cifar_dir, models)],
                 ["--mode", "eval", *EVAL, *LAYERS, "--device", "cpu", "--threads", "1",
                  *dirs(cifar_dir, models, results)]):
        assert run_captured(argv)[0] == 0
    return models, results


@needs_slurm
def test_a_study_queued_in_one_go_runs_one_task_per_model_and_vis_merges_it(study, capsys):
    models, results, runs = study
    status, out, _ = runs["train"]
    assert status == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("slurm: submitted job array ") and lines[0].endswith(
        f": 3 train tasks ({NAMES}); 0 done already")
    train_job = job_of(lines[0])
    script = (models / FOLDER / f"{train_job}_submission.sh").read_text()
    for option in ("--array=0-2%2", "--time=10", "--mem=500M", "--cpus-per-task=1", "--requeue"):
        assert f"#SBATCH {option}" in script, script
    assert lines[1].startswith(f"follow it: squeue --me; logs in {models / FOLDER}")

    status, out, _ = runs["eval"]
    assert status == 0, out
    lines = visible_lines(out)
    # the baseline's evaluation first (after its training), then the others (their audit radii scale with its eps*)
    assert lines[0].endswith(f": 1 evaluate tasks (standard_seed0), to start once {train_job} has ended")
    base_job = job_of(lines[0])
    assert lines[1].endswith(f": 2 evaluate tasks ({NAMES.split(' ', 1)[1]}), to start once "
                             f"{' '.join(sorted([train_job, base_job]))} has ended; 0 done already")
    tickets = json.loads((models / FOLDER / TICKETS).read_text())
    assert lines[2:5] == [f"{spec.name}: done (job {tickets[f'evaluate cifar10/simple_cnn/{spec.name}']})"
                          for spec in SPECS]
    assert lines[5] == f"slurm: 3 done, 0 failed; logs in {models / FOLDER}"
    for spec in SPECS:
        assert load_checkpoint(spec.checkpoint_path(models))["metadata"]["status"] == "complete"
        record = ResultStore(results).get(spec)
        assert record.spec == spec and record.eval_config["device"] == "cpu"
    with open(results / "cifar10" / "simple_cnn" / "summary.csv", newline="") as handle:
        assert [row["name"] for row in csv.DictReader(handle)] == [spec.name for spec in SPECS]
    status, out, _ = run_cli(main, ["--mode", "vis", *LAYERS, "--results-dir", str(results)], capsys)
    assert status == 0 and (results / "cifar10" / "simple_cnn" / "l1" / "summary.md").exists()


@needs_slurm
def test_slurm_tasks_give_the_local_launchers_numbers(study, local):
    for spec in SPECS:
        ours = load_checkpoint(spec.checkpoint_path(study[0]))["state_dict"]
        theirs = load_checkpoint(spec.checkpoint_path(local[0]))["state_dict"]
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[key], theirs[key]) for key in ours)
        ours, theirs = (json.loads(ResultStore(root).path(spec).read_text()) for root in (study[1], local[1]))
        # everything but where the checkpoint lay (and its training time) and how long each step took
        for record in (ours, theirs):
            del record["checkpoint"], record["timings"]
        assert ours == theirs


@needs_slurm
def test_a_rerun_submits_nothing(study, cifar_dir, capsys):
    models, results, _ = study
    tickets = (models / FOLDER / TICKETS).read_text()
    status, out, _ = run_cli(main, ["--mode", "train", *TRAIN, *SLURM, *LAYERS, "--wait", *dirs(cifar_dir, models)],
                             capsys)
    assert (status, out) == (0, "slurm: nothing to submit; 3 done already\n")
    status, out, _ = run_cli(main, ["--mode", "eval", *EVAL, *SLURM, *LAYERS, "--wait",
                                    *dirs(cifar_dir, models, results)], capsys)
    assert status == 0 and visible_lines(out)[0] == "slurm: nothing to submit; 3 done already"
    assert (models / FOLDER / TICKETS).read_text() == tickets


@needs_slurm
def test_a_failing_task_is_reported_with_its_log_while_the_other_succeeds(cifar_dir, tmp_path, capsys):
    # a float32 overflow of the L1 term (1e39 * mean|a| = inf) makes that model's training diverge, as locally
    argv = ["--mode", "train", *TRAIN, *SLURM, "--layers", "fc1", "--strengths", "0.01", "1e39", "--no-baseline",
            "--wait", *dirs(cifar_dir, tmp_path)]
    status, out, _ = run_cli(main, argv, capsys)
    assert status == 1
    lines = visible_lines(out)
    job = job_of(lines[0])
    assert lines[1] == f"l1_fc1_s0.01_seed0: done (job {job}_0)"
    assert lines[2].startswith(f"l1_fc1_s1e+39_seed0: FAILED (job {job}_1): ")
    assert "DIVERGED (non-finite loss) in epoch 1" in lines[2] and f"log {tmp_path / FOLDER}" in lines[2]
    assert lines[3] == f"slurm: 1 done, 1 failed (l1_fc1_s1e+39_seed0); logs in {tmp_path / FOLDER}"
    spec = ModelSpec("l1", "fc1", 0.01, 0, dataset="cifar10")
    assert load_checkpoint(spec.checkpoint_path(tmp_path))["metadata"]["status"] == "complete"


def scontrol(*args):
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, check=False)


@needs_slurm
def test_a_requeued_task_resumes_from_its_last_epoch_checkpoint(cifar_dir, tmp_path, capsys):
    """Preemption as Slurm does it: the running task is killed and queued again (--requeue), and its second run
    continues the model's training from the last completed epoch."""
    argv = ["--mode", "train", *TRAIN, "--epochs", "100", *SLURM, "--layers", "fc1", "--no-baseline",
            *dirs(cifar_dir, tmp_path)]
    status, out, _ = run_cli(main, argv, capsys)
    assert status == 0
    job = job_of(out)
    checkpoint = ModelSpec("l1", "fc1", 0.01, 0, dataset="cifar10").checkpoint_path(tmp_path)
    log = tmp_path / FOLDER / f"{job}_0_log.out"
    deadline = time.monotonic() + 300  # generous: CI runs this beside the suite's heaviest tests
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists(), (f"no epoch checkpoint in 300 s; Slurm's state: {queued().get(job, 'not queued')}; "
                                 f"its log:\n{log.read_text() if log.exists() else '(none yet)'}")
    assert load_checkpoint(checkpoint)["metadata"]["status"] == "in_progress"
    assert scontrol("requeue", job).returncode == 0
    # Slurm holds a requeued job back for two minutes: release it once it is pending again, and not within the second
    # the node revoked the killed run's credential (released earlier, its launch fails: "Job credential revoked")
    while queued().get(job, ("",))[0] != "pending" and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)
    while "restart 1" not in log.read_text() and time.monotonic() < deadline:
        scontrol("update", f"jobid={job}", "StartTime=now")
        time.sleep(0.5)
    assert "restart 1" in log.read_text(), f"the requeued task did not start again in 300 s; its log:\n{log.read_text()}"

    status, out, _ = run_cli(main, [*argv, "--wait"], capsys)  # the rerun submits nothing and waits for it
    assert status == 0
    assert visible_lines(out)[0] == f"slurm: nothing to submit; 1 already queued ({job}); 0 done already", \
        f"task log:\n{log.read_text()}\nscontrol show job:\n{scontrol('show', 'job', job).stdout}"
    text = log.read_text()
    assert "restart 0" in text and "restart 1" in text and "l1_fc1_s0.01_seed0: resumed, 100 epochs" in text
    metadata = load_checkpoint(checkpoint)["metadata"]
    assert (metadata["status"], metadata["epochs_done"]) == ("complete", 100)


@needs_slurm
def test_a_job_the_scheduler_refuses_exits_2_and_submits_nothing(cifar_dir, tmp_path, capsys):
    status, _, err = run_cli(main, ["--mode", "train", *TRAIN, *SLURM, "--partition", "no-such-partition",
                                    *LAYERS, *dirs(cifar_dir, tmp_path)], capsys)
    assert_usage_error(status, err, "Slurm refused the job array (", "Invalid partition name specified",
                       "check --partition")
    assert not (tmp_path / FOLDER / TICKETS).exists()


def test_without_sbatch_on_path_exits_2_before_any_work(cifar_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    status, _, err = run_cli(main, ["--mode", "eval", *EVAL, *SLURM, *LAYERS, *dirs(cifar_dir, tmp_path / "m",
                                                                                     tmp_path / "r")], capsys)
    assert_usage_error(status, err, "--launcher slurm needs Slurm's sbatch on PATH", "or use --launcher local")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("argv, fragments", [
    (["--mode", "train", "--partition", "gpu"], ["--partition applies to --launcher slurm only"]),
    (["--mode", "eval", "--wait"], ["--wait applies to --launcher slurm only"]),
    (["--mode", "train", "--launcher", "slurm", "--sbatch-args=--array=0-9"], ["--sbatch-args must not set --array"]),
    (["--mode", "train", "--launcher", "slurm", "--sbatch-args=-o x.log"], ["--sbatch-args must not set -o"]),
    (["--mode", "train", "--launcher", "slurm", "--sbatch-args=--comment 'open"], ["--sbatch-args is not a list"]),
    (["--mode", "train", "--launcher", "slurm", "--max-running", "0"], ["--max-running must be at least 1"]),
    (["--mode", "eval", "--launcher", "slurm", "--mem", ""], ["--mem must be one word"]),
    (["--mode", "vis", "--launcher", "slurm"], ["--launcher applies to --mode train and eval"]),
])
def test_bad_launcher_options_exit_2_with_one_line(argv, fragments, capsys):
    status, _, err = run_cli(main, argv, capsys)
    assert_usage_error(status, err, *fragments)
