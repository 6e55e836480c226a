"""--launcher slurm against a real Slurm scheduler: one array task per variant, the same files as the local
launcher, waiting and reporting, reruns, failures, requeueing, and bad input.

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
from pathlib import Path

import pytest
import torch

from cli_support import assert_usage_error, run_cli, visible_lines
from common.cli import run_main
from data.registry import dataset_folder
from launch import slurm
from launch.array import FOLDER, ArrayJob, Task
from launch.sweep import waits_for
from main import build_parser, main
from sparsity.variants import Variant
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
# the audit at a multiple of the same-seed baseline's median eps*: the baselines' tasks run first (the local
# launcher's order). At 2x on 4 images AutoAttack breaks every image with its first attack: at 1x on 10 the images
# it cannot break cost Square's 5,000 queries each, 3.5 of this file's 7.5 minutes, and test nothing Slurm does.
EVAL = ["--quick", "--audit-radii", "2x", "--audit-n", "4", "--attacks", "pgd", "--n-eval", "8", "--check-n", "8",
        "--fab-steps", "3"]
SLURM = ["--launcher", "slurm", "--cpus-per-task", "1"]  # the test cluster's cores are shared
LAYERS = ["--layers", "conv2", "fc1"]
VARIANTS = (Variant.baseline(0), Variant("l1", "conv2", 0.01, 0), Variant("l1", "fc1", 0.01, 0))
NAMES = " ".join(variant.name for variant in VARIANTS)


def dirs(data, models, results=None):
    return ["--data-dir", str(data), "--models-dir", str(models)] + (["--results-dir", str(results)] if results else [])


def run_captured(argv):
    """(exit status, stdout, stderr) of ``main.py argv`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        run_main(main, argv)
    return exit_info.value.code, out.getvalue(), err.getvalue()


def array_records(folder):
    """The job array records and scripts kept in a slurm folder (the logs left out)."""
    return sorted(path.name for path in folder.glob("*") if path.suffix in (".json", ".sh"))


@pytest.fixture(scope="module")
def study(cifar_dir, tmp_path_factory):
    """The study queued in one go: train without waiting, then eval --wait, whose array waits for the training
    tasks. Returns (models dir, results dir, {mode: (status, stdout, stderr)})."""
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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for argv in (["--mode", "train", *TRAIN, *LAYERS, "--device", "cpu", *dirs(cifar_dir, models)],
                     ["--mode", "eval", *EVAL, *LAYERS, "--device", "cpu", *dirs(cifar_dir, models, results)]):
            assert run_captured(argv)[0] == 0
    finally:
        torch.set_num_threads(threads)
    return models, results


def cifar(root):
    """The generated data's folder under a --models-dir or --results-dir."""
    return dataset_folder(root, "cifar10")


@needs_slurm
def test_a_study_queued_in_one_go_runs_one_task_per_variant_and_vis_merges_it(study, capsys):
    models_root, results_root, runs = study
    models, results = cifar(models_root), cifar(results_root)
    status, out, _ = runs["train"]
    assert status == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("slurm: submitted job array ") and lines[0].endswith(f": 3 train tasks ({NAMES}); 0 "
                                                                                   f"trained already")
    train_job = lines[0].split()[4].rstrip(":")
    record = json.loads((models / FOLDER / f"train-{train_job}.json").read_text())
    assert {"--array=0-2%2", "--time=10", "--mem=500M", "--cpus-per-task=1", "--requeue"} <= set(record["sbatch"])
    assert record["tasks"][1]["command"][-11:] == ["--dataset", "cifar10", "--layers", "conv2", "--strength", "0.01",
                                                   "--no-baseline", "--seed", "0", "--device", "cpu"]
    assert lines[1].startswith(f"follow it: squeue --array --jobs {train_job}; tail -f {models / FOLDER}")

    status, out, _ = runs["eval"]
    assert status == 0, out
    lines = out.strip().splitlines()
    # the baseline's evaluation first, then the variants' (their audit radii scale with its median eps*)
    assert lines[0].endswith(f": 1 eval tasks (standard_seed0), to start once {train_job}_0 has ended; the other "
                             f"variants wait for it (the audit reads its records)")
    base_job = lines[0].split()[4].rstrip(":")
    assert lines[1].endswith(f": 2 eval tasks ({NAMES.split(' ', 1)[1]}), to start once {train_job} {base_job} "
                             f"has ended; 0 up to date")
    eval_job = lines[1].split()[4].rstrip(":")
    tasks = [f"{base_job}_0", f"{eval_job}_0", f"{eval_job}_1"]
    assert lines[2:5] == [f"{variant.name}: done (task {task})" for variant, task in zip(VARIANTS, tasks)]
    assert lines[5] == f"slurm: 3 done, 0 failed, 0 still queued or running; logs in {results / 'l1' / FOLDER}"

    for variant in VARIANTS:
        assert load_checkpoint(variant.checkpoint_path(models))["metadata"]["status"] == "complete"
        record = json.loads(variant.results_path(results, "l1").read_text())
        assert record["variant"]["name"] == variant.name and record["eval_config"]["device"] == "cpu"
    # beside the files each task wrote: the array's script and record, and one log per task ending in its marker
    assert array_records(models / FOLDER) == [f"train-{train_job}.json", f"train-{train_job}.sh"]
    assert array_records(results / "l1" / FOLDER) == sorted([f"eval-{job}.{ext}" for job in (base_job, eval_job)
                                                             for ext in ("json", "sh")])
    for index, variant in enumerate(VARIANTS):
        log = (models / FOLDER / f"train-{train_job}_{index}.log").read_text()
        assert f"{variant.name}: trained, 2 epochs" in log and log.endswith("[slurm] exit status 0\n")
    with open(results / "l1" / "summary.csv", newline="") as handle:
        assert [row["variant"] for row in csv.DictReader(handle)] == [variant.name for variant in VARIANTS]

    status, out, _ = run_cli(main, ["--mode", "vis", *LAYERS, "--results-dir", str(results_root)], capsys)
    assert status == 0 and (results / "l1" / "summary.md").exists()
    assert "conv2 (λ=0.01)" in (results / "l1" / "summary.md").read_text()


@needs_slurm
def test_slurm_tasks_give_the_local_launchers_numbers(study, local):
    slurm_models, slurm_results = cifar(study[0]), cifar(study[1])
    local_models, local_results = cifar(local[0]), cifar(local[1])
    for variant in VARIANTS:
        ours = load_checkpoint(variant.checkpoint_path(slurm_models))
        theirs = load_checkpoint(variant.checkpoint_path(local_models))
        assert ours["state_dict"].keys() == theirs["state_dict"].keys()
        assert all(torch.equal(ours["state_dict"][key], theirs["state_dict"][key]) for key in ours["state_dict"])
        ours = json.loads(variant.results_path(slurm_results, "l1").read_text())
        theirs = json.loads(variant.results_path(local_results, "l1").read_text())
        # everything but where the checkpoint lay (and its training time) and how long each step took
        for record in (ours, theirs):
            del record["checkpoint"], record["timings"]
        assert ours == theirs


@needs_slurm
def test_a_rerun_submits_nothing(study, cifar_dir, capsys):
    models_root, results_root, _ = study
    models, results = cifar(models_root), cifar(results_root)
    before = array_records(models / FOLDER), array_records(results / "l1" / FOLDER)
    status, out, _ = run_cli(main, ["--mode", "train", *TRAIN, *SLURM, *LAYERS, "--wait",
                                    *dirs(cifar_dir, models_root)], capsys)
    assert (status, out) == (0, "slurm: nothing to submit; 3 trained already\n")
    status, out, _ = run_cli(main, ["--mode", "eval", *EVAL, *SLURM, *LAYERS, "--wait",
                                    *dirs(cifar_dir, models_root, results_root)], capsys)
    assert (status, out) == (0, "slurm: nothing to submit; 3 up to date\n"
                                f"{results / 'l1' / 'summary.csv'} lists every result in {results / 'l1'}\n")
    assert before == (array_records(models / FOLDER), array_records(results / "l1" / FOLDER))


@needs_slurm
def test_a_failing_task_is_reported_with_its_log_while_the_other_succeeds(cifar_dir, tmp_path, capsys):
    # a float32 overflow of the L1 term (1e39 * mean|a| = inf) makes that variant's task exit 1, as locally
    argv = ["--mode", "train", *TRAIN, *SLURM, "--layers", "fc1", "--strengths", "0.01", "1e39", "--no-baseline",
            "--wait", *dirs(cifar_dir, tmp_path)]
    status, out, _ = run_cli(main, argv, capsys)
    assert status == 1
    lines = out.strip().splitlines()
    job = lines[0].split()[4].rstrip(":")
    models = cifar(tmp_path)
    log = models / FOLDER / f"train-{job}_1.log"
    assert lines[1] == f"fc1_s0.01_seed0: done (task {job}_0)"
    assert lines[2] == (f"fc1_s1e+39_seed0: FAILED (task {job}_1): exit status 1; log {log}: training: 1 DIVERGED "
                        f"(fc1_s1e+39_seed0); checkpoints in {models}")
    assert lines[3] == (f"slurm: 1 done, 1 failed (fc1_s1e+39_seed0), 0 still queued or running; "
                        f"logs in {models / FOLDER}")
    assert "fc1_s1e+39_seed0: DIVERGED (non-finite loss) in epoch 1" in log.read_text()
    assert load_checkpoint(Variant("l1", "fc1", 0.01, 0).checkpoint_path(models))["metadata"]["status"] == "complete"


def scontrol(*args):
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, check=False)


@needs_slurm
def test_a_requeued_task_resumes_from_its_last_epoch_checkpoint(cifar_dir, tmp_path, capsys):
    """Preemption as Slurm does it: the running task is killed and queued again (--requeue), and its second run
    continues the variant's training from the last completed epoch."""
    argv = ["--mode", "train", *TRAIN, "--epochs", "20", *SLURM, "--layers", "fc1", "--no-baseline",
            *dirs(cifar_dir, tmp_path)]
    status, out, _ = run_cli(main, argv, capsys)
    assert status == 0
    job = out.split()[4].rstrip(":")
    checkpoint = Variant("l1", "fc1", 0.01, 0).checkpoint_path(cifar(tmp_path))
    log = cifar(tmp_path) / FOLDER / f"train-{job}_0.log"
    deadline = time.monotonic() + 300  # generous: CI runs this beside the suite's heaviest tests
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists(), (f"no epoch checkpoint in 300 s; Slurm's state of the task: "
                                 f"{slurm.queued_tasks().get((job, 0), 'not queued')}; its log:\n"
                                 f"{log.read_text() if log.exists() else '(none yet)'}")
    assert load_checkpoint(checkpoint)["metadata"]["status"] == "in_progress"
    assert scontrol("requeue", f"{job}_0").returncode == 0
    # Slurm holds a requeued job back for two minutes: release it once it is pending again, and not within the
    # second the node revoked the killed run's credential, which Slurm tracks to the second: released earlier, the
    # job starts at once and its launch fails ("Job credential revoked"), so the task ends, not what is tested here.
    while slurm.queued_tasks().get((job, 0), ("",))[0] != "pending" and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)
    while "restart 1" not in log.read_text() and time.monotonic() < deadline:
        scontrol("update", f"jobid={job}_0", "StartTime=now")
        time.sleep(0.5)
    assert "restart 1" in log.read_text(), f"the requeued task did not start again in 300 s; its log:\n{log.read_text()}"

    status, out, _ = run_cli(main, [*argv, "--wait"], capsys)  # the rerun submits nothing and waits for it
    assert status == 0
    # on failure, what the task printed and what Slurm says of it (the test cluster keeps no accounting)
    assert visible_lines(out)[0] == f"slurm: nothing to submit; 1 already queued ({job}_0); 0 trained already", \
        f"task log:\n{log.read_text()}\nscontrol show job:\n{scontrol('show', 'job', job).stdout}"
    log = log.read_text()
    assert "restart 0" in log and "restart 1" in log
    assert "fc1_s0.01_seed0: resumed, 20 epochs" in log
    metadata = load_checkpoint(checkpoint)["metadata"]
    assert (metadata["status"], metadata["epochs_done"]) == ("complete", 20)


@needs_slurm
def test_a_job_the_scheduler_refuses_exits_2_and_submits_nothing(cifar_dir, tmp_path, capsys):
    status, _, err = run_cli(main, ["--mode", "train", *TRAIN, *SLURM, "--partition", "no-such-partition",
                                    *LAYERS, *dirs(cifar_dir, tmp_path)], capsys)
    assert_usage_error(status, err, "Slurm refused the job array (Batch job submission failed: Invalid partition "
                                    "name specified); nothing was submitted; check --partition")
    assert not list(tmp_path.rglob("*.*"))


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


def test_a_task_command_parses_back_to_the_same_settings_for_its_variant():
    parser = build_parser()
    argv = ["--mode", "eval", "--dropout", "--layers", "conv1,fc2", "--strengths", "0.1", "0.2", "--seeds", "3", "4",
            "--eps", "4/255", "--eps-sweep", "--nes-momenta", "0.5", "--nes-n", "7", "--results-dir", "rel/results",
            "--launcher", "slurm", "--partition", "gpu", "--wait", "--quick", "--nes-loss", "margin",
            "--adaptive-schedule", "10@0", "50@5", "--minimal-norms", "linf", "--minimal-limit", "0.3",
            "--eval-batch-size", "7"]  # its dest is --batch-size's (train), which the task must not get
    args = parser.parse_args(argv)
    shared = parser.command_line(args, leave_out={"layers", "strengths", "seeds", "launcher", "partition", "wait"})
    parser.reject_other_modes(shared, "eval")  # only eval's options, though --eval-batch-size shares a dest
    again = parser.parse_args([*shared, "--layers", "fc2", "--strength", "0.2", "--seed", "4"])
    expected = vars(args) | {"layers": ["fc2"], "strengths": None, "strength": 0.2, "seeds": None, "seed": 4,
                             "launcher": "local", "partition": None, "wait": False,
                             "results_dir": Path.cwd() / "rel" / "results"}
    assert vars(again) == expected


def test_an_evaluation_waits_for_whole_training_arrays_or_for_single_tasks():
    def array(job_id, layers):
        return ArrayJob("train", Path("slurm"), [Task(i, Variant("l1", layer, 0.01, 0), ()) for i, layer in
                                                 enumerate(layers)], job_id)

    first, second = array("7", ["conv1", "conv2"]), array("9", ["fc1", "fc2", "fc3"])
    queued = [(first, task) for task in first.tasks] + [(second, task) for task in second.tasks[1:]]
    needed = [queued[0], queued[1], queued[3]]  # all of 7; 9_2 but not 9_1 (9_0 has left the queue)
    assert waits_for(needed, queued) == ["7", "9_2"]
    assert waits_for(queued[2:], queued) == ["9"]
    assert waits_for([], queued) == []
