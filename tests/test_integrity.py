"""Results that cannot be mislabelled or lost, and bad input refused everywhere (one test per finding)."""
import json
import os
import shutil
import stat

import pytest
import torch

import planner.tasks
from attacks import NES, PGD
from cli_support import assert_usage_error, run_cli
from common.cli import run_main
from common.errors import ConfigError
from common.io import atomic_write_text
from main import main
from models.spec import ModelSpec, strength_name
from training.checkpoint import checkpoint_test_set, load_checkpoint, load_model

TRAIN = ["--mode", "train", "--classes", "0", "1", "--epochs", "1", "--batch-size", "16", "--train-per-class", "16",
         "--test-per-class", "5", "--device", "cpu"]
EVAL = ["--mode", "eval", "--audit-radii", "none", "--device", "cpu", "--attacks", "pgd", "--n-eval", "12", "--steps", "3", "--check-n", "4",
        "--minimal-norms", "none"]


def run(argv, capsys):
    return run_cli(main, argv, capsys)


def paths(cifar_dir, models_dir, results_dir=None):
    return ["--data-dir", str(cifar_dir), "--models-dir", str(models_dir)] + (
        ["--results-dir", str(results_dir)] if results_dir else [])


@pytest.fixture(scope="module")
def models(cifar_dir, tmp_path_factory):
    """The baseline, L1 at conv3 and fc1, and dropout at conv3, one short epoch each."""
    folder = tmp_path_factory.mktemp("models")
    with pytest.raises(SystemExit) as first:
        run_main(main, [*TRAIN, "--layers", "conv3", "fc1", *paths(cifar_dir, folder)])
    with pytest.raises(SystemExit) as second:
        run_main(main, [*TRAIN, "--method", "dropout", "--layers", "conv3", "--no-baseline", *paths(cifar_dir, folder)])
    assert first.value.code == second.value.code == 0
    return folder


# 1. strengths that differ past the 6th significant digit --------------------------------------------------

def test_strengths_that_differ_late_get_their_own_files_and_names_read_back_exactly(cifar_dir, tmp_path, capsys):
    for strength in (0.1234567, 0.1234568, 1e-05, 2e-4, 10.0, 1e39, 0.3):
        assert float(strength_name(strength)) == strength
    assert strength_name(10.0) == "10" and strength_name(0.01) == "0.01" and strength_name(1e-05) == "1e-05"
    status, _, _ = run([*TRAIN, "--layers", "fc2", "--strengths", "0.1234567", "0.1234568", "--no-baseline",
                        *paths(cifar_dir, tmp_path)], capsys)
    assert status == 0
    folder = tmp_path / "cifar10" / "simple_cnn"
    names = sorted(path.name for path in folder.glob("*.pt"))
    assert names == ["l1_fc2_s0.1234567_seed0.pt", "l1_fc2_s0.1234568_seed0.pt"]
    assert load_checkpoint(folder / names[1])["metadata"]["spec"]["strength"] == 0.1234568


# 2. eval checks whose checkpoint it loaded ---------------------------------------------------------------

@pytest.mark.parametrize("source, target", [
    (ModelSpec("l1", "conv3", 0.01, 0), ModelSpec("l1", "fc1", 0.01, 0)),
    (ModelSpec("dropout", "conv3", 0.3, 0), ModelSpec("l1", "conv3", 0.3, 0)),
])
def test_eval_refuses_a_checkpoint_of_another_model_naming_both(cifar_dir, models, tmp_path, capsys, source,
                                                                target):
    folder = tmp_path / "models"
    shutil.copytree(models, folder)
    target.checkpoint_path(folder).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source.checkpoint_path(folder), target.checkpoint_path(folder))
    status, _, err = run([*EVAL, "--layers", target.layer, "--strength", str(target.strength), "--no-baseline",
                          *paths(cifar_dir, folder, tmp_path / "results")], capsys)
    # the names carry the method: l1_conv3_s0.01_seed0, dropout_conv3_s0.3_seed0
    assert_usage_error(status, err, f"holds {source.name} ", f"not {target.name}")
    assert not list((tmp_path / "results").rglob("*.json"))


# 3. eval resumes, keeps summary.csv up to date, and says what Ctrl-C kept ---------------------------------

def test_eval_skips_up_to_date_results_and_redoes_them_with_force(cifar_dir, models, tmp_path, capsys):
    argv = [*EVAL, "--layers", "conv3", *paths(cifar_dir, models, tmp_path)]
    assert run(argv, capsys)[0] == 0
    record = tmp_path / "cifar10" / "simple_cnn" / "l1_conv3_s0.01_seed0.json"
    before = record.read_bytes()
    status, out, _ = run(argv, capsys)
    assert status == 0 and "plan: 0 of 0 tasks done, 2 done already, 0 failed" in out
    assert out.strip().splitlines()[-1].startswith("evaluation: results in ")
    assert record.read_bytes() == before
    status, out, _ = run([*argv, "--steps", "4"], capsys)  # other settings: not up to date
    assert status == 0 and "plan: 2 of 2 tasks done, 0 done already, 0 failed" in out
    assert "l1_conv3_s0.01_seed0: clean acc" in out
    status, out, _ = run([*argv, "--steps", "4", "--force"], capsys)
    assert status == 0 and "plan: 2 of 2 tasks done, 0 done already" in out
    assert json.loads(record.read_text())["eval_config"]["attack_settings"]["pgd"]["steps"] == 4


def test_eval_reads_each_checkpoint_mapped_once_to_plan_and_once_to_evaluate(cifar_dir, models, tmp_path, capsys,
                                                                            monkeypatch):
    """Checked before any attack (when the plan is made) and read again when its turn comes (the task may run in
    another process): the weights mapped from the file rather than held in memory."""
    loads, load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda path, **kwargs: loads.append((path, kwargs.get("mmap"))) or load(
        path, **kwargs))
    evaluate, evaluated = planner.tasks.evaluate, []
    monkeypatch.setattr(planner.tasks, "evaluate", lambda spec, setup: evaluated.append(len(loads)) or evaluate(
        spec, setup))
    status, out, _ = run([*EVAL, "--layers", "conv3", "fc1", *paths(cifar_dir, models, tmp_path)], capsys)
    assert status == 0 and "plan: 3 of 3 tasks done" in out
    specs = [ModelSpec.baseline_of(0), ModelSpec("l1", "conv3", 0.01, 0), ModelSpec("l1", "fc1", 0.01, 0)]
    expected = [(spec.checkpoint_path(models), True) for spec in specs]
    assert sorted(loads) == sorted(expected * 2)
    assert sorted(loads[:evaluated[0]]) == sorted(expected)  # every checkpoint checked before the first attack


def test_interrupted_eval_keeps_finished_models_in_the_summary(cifar_dir, models, tmp_path, capsys, monkeypatch):
    real, calls = planner.tasks.evaluate, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(planner.tasks, "evaluate", interrupted)
    status, _, err = run([*EVAL, "--layers", "conv3", "fc1", *paths(cifar_dir, models, tmp_path)], capsys)
    assert status == 130 and "finished models' records are saved" in err and "completed epochs" not in err
    folder = tmp_path / "cifar10" / "simple_cnn"
    assert sorted(path.name for path in folder.glob("*.json")) == ["standard_seed0.json"]
    summary = (folder / "summary.csv").read_text().splitlines()
    assert len(summary) == 2 and summary[1].startswith("cifar10,simple_cnn,standard_seed0,standard,")


# 4. files a results folder did not write ------------------------------------------------------------------

def test_foreign_json_is_skipped_and_a_broken_result_stops_eval_before_any_attack(cifar_dir, models, tmp_path,
                                                                                  capsys, monkeypatch):
    folder = tmp_path / "cifar10" / "simple_cnn"
    folder.mkdir(parents=True)
    (folder / "notes.json").write_text('{"todo": "rerun conv1"}')
    status, out, err = run([*EVAL, "--layers", "conv3", "--no-baseline", *paths(cifar_dir, models, tmp_path)], capsys)
    assert status == 0 and "notes.json" in err and "not result files, skipped" in err
    broken = json.loads((folder / "l1_conv3_s0.01_seed0.json").read_text())
    broken["attacks"] = [1, 2]
    (folder / "l1_conv3_s0.01_seed0.json").write_text(json.dumps(broken))
    monkeypatch.setattr(planner.tasks, "evaluate", lambda *a, **k: pytest.fail("an attack ran"))
    status, _, err = run([*EVAL, "--layers", "fc1", "--no-baseline", *paths(cifar_dir, models, tmp_path)], capsys)
    assert_usage_error(status, err, "l1_conv3_s0.01_seed0.json", "attacks must be an object")


# 5. the result records the settings actually used --------------------------------------------------------

def test_recorded_settings_are_the_ones_used(cifar_dir, models, tmp_path, capsys):
    status, _, _ = run([*EVAL, "--attacks", "pgd", "nes", "--nes-n", "100000", "--nes-steps", "1", "--nes-samples", "2",
                        "--layers", "conv3", "--no-baseline", *paths(cifar_dir, models, tmp_path)], capsys)
    assert status == 0
    record = json.loads((tmp_path / "cifar10" / "simple_cnn" / "l1_conv3_s0.01_seed0.json").read_text())
    assert record["eval_config"]["query_batch"] == 64 and record["eval_config"]["n_eval"] == 12
    assert record["eval_config"]["query_n"] == 12 == record["attacks"]["nes_untargeted_m0"]["n"]
    assert record["attacks"]["nes_untargeted_m0"]["settings"]["query_batch"] == 64


# 6. files honour the umask --------------------------------------------------------------------------------

def test_written_files_honour_the_umask(cifar_dir, tmp_path, capsys):
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "plain.txt", "x")
        assert run([*TRAIN, "--baseline-only", *paths(cifar_dir, tmp_path)], capsys)[0] == 0
    finally:
        os.umask(previous)
    for path in (tmp_path / "plain.txt", ModelSpec.baseline_of(0).checkpoint_path(tmp_path)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


# 7-10. bad input refused before any work ------------------------------------------------------------------

@pytest.mark.parametrize("argv, fragment", [
    ([*TRAIN, "--seed", "-1"], "--seed must be an integer in [0, 2^32), got -1"),
    ([*TRAIN, "--seed", "18446744073709551616"], "--seed must be an integer in [0, 2^32)"),
    ([*TRAIN, "--seeds", "3", "3"], "--seeds lists 3 more than once"),
    ([*TRAIN, "--layers", "conv3", "conv3"], "--layers lists 'conv3' more than once"),
    ([*TRAIN, "--strengths", "0.01", "0.01"], "--strengths lists 0.01 more than once"),
    ([*TRAIN, "--layers", ","], "--layers lists no layer"),
    ([*TRAIN, "--lr", "inf"], "--lr must be a finite number"),
    ([*TRAIN, "--nes-n", "0"], "--nes-n applies to --mode eval, not --mode train"),
    (["--mode", "vis", "--epochs", "0"], "--epochs applies to --mode train, not --mode vis"),
    ([*EVAL, "--classes", "1", "2", "3"], "--classes applies to --mode train, not --mode eval"),
    ([*EVAL, "--batch-size", "8"], "--batch-size applies to --mode train, not --mode eval; use --eval-batch-size"),
    ([*TRAIN, "--eval-batch-size", "8"], "--eval-batch-size applies to --mode eval, not --mode train; use --batch-size"),
    ([*EVAL, "--eps", "inf"], "--eps must be a finite number"),
    ([*EVAL, "--alpha", "inf"], "--alpha must be a finite number"),
    ([*EVAL, "--nes-sigma", "inf"], "--nes-sigma must be a finite number"),
    ([*EVAL, "--eps", "1e9"], "--eps must be <= 1"),
    ([*EVAL, "--query-batch", "3"], "--query-batch must be even"),
])
def test_bad_input_exits_2_with_one_line_before_any_work(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(planner.tasks, "train", lambda *a, **k: pytest.fail("training started"))
    monkeypatch.setattr(planner.tasks, "evaluate", lambda *a, **k: pytest.fail("evaluation started"))
    status, _, err = run([*argv, "--data-dir", str(tmp_path)] if argv[1] != "vis" else argv, capsys)
    assert_usage_error(status, err, fragment)


def test_library_rejects_non_finite_settings():
    model = torch.nn.Linear(3, 2)
    for make in (lambda: PGD(model, eps=float("nan")), lambda: PGD(model, alpha=float("inf")),
                 lambda: NES(model, sigma=float("inf")), lambda: PGD(model, eps=torch.tensor([0.1, float("nan")]))(
                     torch.rand(2, 3), torch.tensor([0, 1]))):
        with pytest.raises(ValueError):
            make()


# 11. a write failure names the path and damages nothing ---------------------------------------------------

def test_disk_full_while_saving_a_checkpoint_exits_2_and_keeps_the_old_file(cifar_dir, tmp_path, capsys,
                                                                            monkeypatch):
    argv = [*TRAIN, "--baseline-only", *paths(cifar_dir, tmp_path)]
    assert run(argv, capsys)[0] == 0
    path = ModelSpec.baseline_of(0).checkpoint_path(tmp_path)
    before = path.read_bytes()

    def full_disk(obj, handle):
        handle.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr("common.io.torch.save", full_disk)
    status, _, err = run([*argv, "--force"], capsys)
    assert_usage_error(status, err, f"cannot write {path}", "the previous file, if any, is unchanged")
    assert path.read_bytes() == before and not list(path.parent.glob(".*.tmp"))


# 12. hints carry the paths and recipe flags of the run that printed them -----------------------------------

def test_hints_reproduce_the_run(cifar_dir, models, tmp_path, capsys):
    folder = tmp_path / "models"
    shutil.copytree(models, folder)
    diverged = ModelSpec("l1", "fc1", 0.01, 0).checkpoint_path(folder)
    checkpoint = load_checkpoint(diverged)
    checkpoint["metadata"].update(status="diverged", diverged_in_epoch=1)
    torch.save(checkpoint, diverged)
    status, _, err = run([*EVAL, "--quick", "--layers", "fc1", "fc2", *paths(cifar_dir, folder, tmp_path)], capsys)
    assert status == 0
    data_models = f"--data-dir {cifar_dir} --models-dir {folder}"
    # the precision the checkpoint records (conftest pins fp32; test_train_cli runs the bf16 branch of hints); the
    # recipe's flags in the order of its fields
    amp = "--amp" if checkpoint["metadata"]["recipe"]["amp"] else "--no-amp"
    assert (f"warning: no checkpoint of l1_fc2_s0.01_seed0 in {folder / 'cifar10' / 'simple_cnn'}; train it with: "
            f"python main.py --mode train --quick "
            f"--layers fc2 --strength 0.01 --no-baseline --seed 0 {data_models}") in err
    assert (f"warning: skipping l1_fc1_s0.01_seed0: its checkpoint {diverged} is diverged; retrain it with: python main.py --mode train --layers fc1 "
            f"--strength 0.01 --no-baseline --seed 0 --epochs 1 --batch-size 16 --classes 0 1 --train-per-class 16 "
            f"--test-per-class 5 {amp} {data_models} --force") in err


# notebook ergonomics ----------------------------------------------------------------------------------------

def test_load_model_and_its_own_test_set_in_one_call_each(cifar_dir, models):
    model = load_model(ModelSpec("dropout", "conv3", 0.3, 0).checkpoint_path(models))
    assert not model.training and model.checkpoint_metadata["spec"]["method"] == "dropout"
    x, y = checkpoint_test_set(model, cifar_dir)
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and set(y.tolist()) == {0, 1}
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(model.checkpoint_metadata["clean_test_acc"], abs=0.5)
    attack = PGD(model, eps=8 / 255, steps=2, seed=0)
    assert repr(attack).startswith("PGD(norm='linf', eps=0.0313") and "seed=0" in repr(attack)
    with pytest.raises(TypeError, match="float images"):
        attack((x * 255).to(torch.uint8), y)
    with pytest.raises(TypeError, match="float64"):
        attack(x.double(), y)
    with pytest.raises(TypeError, match="labels must be a tensor"):
        attack(x, y.tolist())
    with pytest.raises(ConfigError, match="eps"):
        PGD(model, eps=float("inf"))


def test_a_models_attacks_follow_its_own_seed_however_the_work_is_split(cifar_dir, tmp_path, capsys):
    folder = tmp_path / "models"
    assert run([*TRAIN, "--baseline-only", "--seeds", "0", "1", *paths(cifar_dir, folder)], capsys)[0] == 0
    attacks = ["--attacks", "pgd", "nes", "--nes-steps", "2", "--nes-samples", "3", "--query-n", "5"]
    assert run([*EVAL, *attacks, "--baseline-only", "--seeds", "0", "1", *paths(cifar_dir, folder, tmp_path / "a")],
               capsys)[0] == 0
    assert run([*EVAL, *attacks, "--baseline-only", "--seed", "1", *paths(cifar_dir, folder, tmp_path / "b")],
               capsys)[0] == 0
    together, alone = (json.loads((tmp_path / run_dir / "cifar10" / "simple_cnn" / "standard_seed1.json").read_text())
                       for run_dir in ("a", "b"))
    assert together["eval_config"]["seed"] == alone["eval_config"]["seed"] == 1
    assert together["attacks"] == alone["attacks"] and together["query_indices"] == alone["query_indices"]
    seed0 = json.loads((tmp_path / "a" / "cifar10" / "simple_cnn" / "standard_seed0.json").read_text())
    assert seed0["eval_config"]["seed"] == 0 and seed0["query_indices"] != together["query_indices"]
