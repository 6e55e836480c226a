"""The planner (planner/): a study declared as data becomes a graph of train and evaluate tasks with their real
dependencies, in seed blocks; a fresh machine continues a study from its committed records; a block begun on another
kind of CPU is redone; the local runner runs trainings alone and evaluations in parallel; a run killed at any point
(SIGKILL) loses nothing and, run again, gives the numbers of an uninterrupted run; and adding an arm is one line,
adding a study one file."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cli_support import run_cli
from planner.plan import make_plan, run_local, waves
from planner.study import Arm, Study
from planner.study_cli import main as study_main
from planner.tasks import EVALUATE, TRAIN, Task
from records.store import ResultStore
from studies import fashion_mnist
from training.checkpoint import load_checkpoint
from vis_fixture import attack_entry, minimal_from, write_result

ROOT = Path(__file__).resolve().parents[1]
STUDY = fashion_mnist.STUDY


def empty_setup(tmp_path, study=STUDY):
    return replace(study.setup(tmp_path / "data"), models_root=tmp_path / "models", results_root=tmp_path / "results")


def test_the_study_declares_each_arm_once_with_its_reference_and_the_same_seeds():
    specs = STUDY.check().specs()
    assert len(specs) == len(set(specs)) == 7 * 5 and STUDY.seeds == (0, 1, 2, 3, 4)
    assert {spec.arm for spec in specs} == {arm.spec(-1, "fashion-mnist") for arm in STUDY.arms}
    assert all(spec.reference in specs for spec in specs if spec.reference is not None)
    with pytest.raises(ValueError, match="is not an arm"):
        STUDY.with_(arms=STUDY.arms[1:]).check()  # the arms' reference left out: refused before anything runs


def test_the_study_from_scratch_is_one_task_per_model_in_seed_blocks_each_evaluation_after_what_it_reads(tmp_path):
    setup = empty_setup(tmp_path)
    assert setup.recipe(STUDY.specs()[0]).epochs == 3 and setup.recipe(STUDY.specs()[0]).amp is False
    assert setup.protocol.eps == 0.1 and "autoattack" in setup.protocol.attacks and setup.protocol.audit_radii
    plan = make_plan(STUDY.specs(), setup, one_kind_per_block=True)
    assert len(plan.tasks) == 70 and not plan.done and not plan.redone_blocks
    assert list(plan.blocks()) == [0, 1, 2, 3, 4]
    for seed, tasks in plan.blocks().items():
        kinds = [task.kind for task in tasks]
        assert kinds == [TRAIN] * 7 + [EVALUATE] * 7  # a block's trainings, then its evaluations
        keys = {task.key for task in tasks}
        for task in tasks:
            assert {task.spec.seed} == {seed} and set(task.needs) <= keys
            if task.kind == EVALUATE:
                assert Task(TRAIN, task.spec).key in task.needs
                if not task.spec.is_baseline:  # its audit's radii scale with its baseline's median eps*
                    assert Task(EVALUATE, task.spec.baseline).key in task.needs
        kwta = next(task for task in tasks if task.kind == EVALUATE and task.spec.method == "kwta")
        assert Task(TRAIN, kwta.spec.surrogate).key in kwta.needs  # the transfer attack's source
    first = waves(plan.blocks()[0])
    assert [len(wave) for wave in first] == [7, 2, 5]  # trainings; the two baselines; the arms that read them
    assert "block seed 0:" in plan.describe() and "<- train fashion-mnist/simple_cnn/standard_seed0" in plan.describe()


def test_a_fresh_machine_continues_the_study_from_its_committed_records_alone(tmp_path):
    """Checkpoints are not committed: with the records and no checkpoint, every recorded model is kept; a missing
    record costs its model's training and evaluation, and the surrogate a k-WTA model's transfer attack needs."""
    setup = replace(empty_setup(tmp_path), results_root=tmp_path / "results")
    shutil.copytree(ROOT / STUDY.store, tmp_path / "results")
    assert not make_plan(STUDY.specs(), setup).tasks  # the committed study: nothing to do
    kwta = next(spec for spec in STUDY.specs() if spec.method == "kwta" and spec.seed == 3)
    ResultStore(tmp_path / "results").path(kwta).unlink()
    plan = make_plan(STUDY.specs(), setup)
    assert [task.key for task in plan.tasks] == [f"train fashion-mnist/simple_cnn/{name}" for name in
                                                 (kwta.name, "standard_seed3")] + [
        f"evaluate fashion-mnist/simple_cnn/{kwta.name}"]
    assert len(plan.done) == 34


def record(setup, spec, machine):
    """A made-up record of ``spec`` evaluated with ``setup``'s protocol (on 10,000 test images) on ``machine``."""
    protocol = setup.protocol_for(spec).resolved(torch.device("cpu"), 10000)
    write_result(setup.results_root, spec, 0.9, {"conv1": 0.5}, {"autoattack": attack_entry("autoattack", 10, 9, 9)},
                 minimal={"linf": minimal_from([0.02 + 0.001 * i for i in range(9)] + [0.0], 0.4)}, machine=machine,
                 eval_config={**protocol.to_dict(), "device": "cpu"})


def test_a_block_begun_on_another_kind_of_cpu_is_redone_here_and_a_finished_one_is_kept(tmp_path):
    study = Study("two arms", "cifar10", (Arm("standard"), Arm("L1", "l1", "conv1", 1.0)), (0, 1),
                  store=str(tmp_path / "results"), models=str(tmp_path / "models"), protocol="quick")
    elsewhere = {"cpu": "another CPU", "cpu_capability": "AVX2", "threads": 1}
    setup = study.setup(tmp_path / "data")
    for spec in study.specs():
        if spec.seed == 1 or spec.is_baseline:  # block 1 finished elsewhere, block 0 begun elsewhere
            record(setup, spec, elsewhere)
    plan = make_plan(study.specs(), setup, one_kind_per_block=True)
    assert plan.redone_blocks == (0,) and set(plan.blocks()) == {0}
    assert {task.spec.name for task in plan.tasks} == {"standard_seed0", "l1_conv1_s1_seed0"}  # both, not one
    assert "(begun on another kind of CPU: redone here)" in plan.describe()
    assert not make_plan(study.specs(), setup).redone_blocks  # main.py's plans mix kinds as the user asks


def test_adding_an_arm_is_one_line_and_adding_a_study_one_file(tmp_path):
    """One more Arm in the declaration is one more model per seed in the plan and one more row per statistic in the
    comparisons; a study is one file handed to the shared command line."""
    more = STUDY.with_(arms=STUDY.arms + (Arm("dropout fc1 p=0.3", "dropout", "fc1", 0.3),))
    assert len(make_plan(more.specs(), empty_setup(tmp_path, more)).tasks) == 2 * 8 * 5
    path = tmp_path / "tiny_study.py"
    path.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from planner.study import Arm, Study
        from planner.study_cli import run_study
        STUDY = Study("a tiny study", "cifar10", (Arm("standard"), Arm("L1 fc1", "l1", "fc1", 0.01)), (0, 1),
                      store={str(tmp_path / 'r')!r}, models={str(tmp_path / 'm')!r}, protocol="quick")
        if __name__ == "__main__":
            run_study(STUDY)
    """))
    done = subprocess.run([sys.executable, str(path), "--print"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("plan: 8 tasks (4 trainings, 4 evaluations), 0 done already")
    design = subprocess.run([sys.executable, str(path), "--design"], capture_output=True, text=True, cwd=tmp_path)
    assert "a tiny study: 2 arms, 4 models on cifar10" in design.stdout and "smallest detectable effect" in design.stdout


def test_the_design_prints_its_smallest_detectable_effect_from_the_baselines_measured_spread(capsys):
    assert study_main(STUDY, argv=["--design"]) == 0
    out = capsys.readouterr().out
    assert "7 arms, 35 models on fashion-mnist" in out and "from the seed SD 0.0005 of the 5 standard seeds" in out


@pytest.mark.parametrize("argv, fragment", [
    (["--verdict-table"], "no results of the redone Fashion-MNIST study in"),
    (["--dataset", "mnist"], "--dataset mnist: the redone Fashion-MNIST study runs on fashion-mnist only"),
])
def test_bad_study_input_exits_2_with_one_line(argv, fragment, tmp_path, capsys):
    empty = STUDY.with_(store=str(tmp_path / "nothing"))
    status, _, err = run_cli(lambda args: study_main(empty, argv=args), argv, capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and fragment in err


def test_a_bad_result_file_under_tables_exits_2_naming_it(tmp_path, capsys):
    folder = tmp_path / "fashion-mnist" / "simple_cnn"
    folder.mkdir(parents=True)
    (folder / "standard_seed0.json").write_text('{"format": "sparsity-robustness/result", "schema_version": 5}')
    status, _, err = run_cli(lambda args: study_main(STUDY.with_(store=str(tmp_path)), argv=args), ["--tables"],
                             capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "standard_seed0.json" in err


def test_the_gpu_study_runs_the_same_design_at_full_size_on_the_cifar10_jpeg_copy_too():
    gpu = fashion_mnist.GPU
    assert gpu.seeds == tuple(range(20)) and gpu.arms == STUDY.arms and gpu.protocol == "full"
    assert "cifar10-jpeg" in gpu.also_on and gpu.with_(dataset="cifar10-jpeg").specs()[0].dataset == "cifar10-jpeg"


# --- real runs on the generated CIFAR-10 stand-in: two arms, two seeds, tiny budgets ---

TINY_RECIPE = {"quick": True, "classes": (0, 1), "epochs": 2, "train_per_class": 16, "test_per_class": 10}
TINY_PROTOCOL = {"audit_radii": ("2x",), "audit_n": 4, "attacks": ("pgd",), "n_eval": 6, "check_n": 6,
                 "fab_steps": 3, "steps": 3}


def tiny_study(root, seeds=(0, 1)):
    return Study("tiny", "cifar10", (Arm("standard"), Arm("L1 fc1", "l1", "fc1", 0.01)), seeds,
                 store=str(root / "results"), models=str(root / "models"), recipe=TINY_RECIPE, protocol="quick",
                 protocol_changes=TINY_PROTOCOL, train_threads=1, eval_threads=1, workers=2)


def numbers(store):
    """Every record's content but what depends on the run rather than the model: timings and where files lay."""
    found = {}
    for record in ResultStore(store).records():
        document = record.to_json()
        # the checkpoint file's hash covers its training time too: its weights are compared instead
        del document["timings"], document["checkpoint"]["path"], document["checkpoint"]["sha256"]
        document["checkpoint"]["metadata"].pop("train_seconds", None)
        found[record.spec.name] = document
    return found


@pytest.fixture(scope="module")
def uninterrupted(cifar_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    study = tiny_study(root)
    failed = run_local(make_plan(study.specs(), study.setup(cifar_dir), one_kind_per_block=True),
                       study.setup(cifar_dir), study.workers, root / "logs")
    assert not failed
    return root, numbers(root / "results")


def test_the_local_runner_writes_every_record_and_each_task_its_log(uninterrupted):
    root, found = uninterrupted
    assert sorted(found) == ["l1_fc1_s0.01_seed0", "l1_fc1_s0.01_seed1", "standard_seed0", "standard_seed1"]
    logs = sorted(path.name for path in (root / "logs").iterdir())
    assert len(logs) == 8 and all(name.endswith(".log") for name in logs)
    audit = found["l1_fc1_s0.01_seed0"]["audit"]["reference"]
    assert audit["source"] == "standard_seed0 median eps* (correct images)"  # its baseline's record, read first


def run_tiny_study(root, cifar_dir):
    """The tiny study as a process of its own (a new session), as its file would run it."""
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(ROOT)!r}, {str(Path(__file__).parent)!r}]
        from pathlib import Path
        from test_planner import tiny_study
        from planner.plan import make_plan, run_local
        study = tiny_study(Path({str(root)!r}))
        setup = study.setup({str(cifar_dir)!r})
        sys.exit(1 if run_local(make_plan(study.specs(), setup, one_kind_per_block=True), setup, study.workers,
                                Path({str(root)!r}) / "logs") else 0)
    """)
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def test_a_run_killed_at_a_random_point_loses_nothing_and_gives_the_uninterrupted_numbers(uninterrupted, cifar_dir,
                                                                                          tmp_path):
    """SIGKILL to the whole run (the planner and its workers, as a crash would) at a random point, then the same run
    again: no record lost, none twice, none half-written, every number as in an uninterrupted run."""
    process = run_tiny_study(tmp_path, cifar_dir)
    time.sleep(random.Random(os.getpid()).uniform(4, 20))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for path in (tmp_path / "results").rglob("*.json"):  # whatever is there reads back whole
        json.loads(path.read_text())
    again = run_tiny_study(tmp_path, cifar_dir)
    assert again.wait(timeout=900) == 0, again.stderr.read()
    assert numbers(tmp_path / "results") == uninterrupted[1]  # a leftover of a killed write (hidden) is never read
    for spec in tiny_study(tmp_path).specs():
        ours, theirs = (load_checkpoint(spec.checkpoint_path(root / "models"))["state_dict"]
                        for root in (tmp_path, uninterrupted[0]))
        assert all(torch.equal(ours[key], theirs[key]) for key in theirs)
