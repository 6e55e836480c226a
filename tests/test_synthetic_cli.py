"""synthetic_run.py end to end on a tiny configuration, and its bad-input exits."""
import json
import math

import pytest

import synthetic_run
from cli_support import run_cli

TINY = ["--d", "60", "--m", "6", "--width", "20", "--seeds", "0", "1", "--steps", "300", "--no-progress"]


def run(argv, capsys):
    return run_cli(synthetic_run.main, argv, capsys)


def test_writes_results_figure_and_table(tmp_path, capsys):
    code, out, err = run(["--mode", "l1", "--strengths", "0", "1e-3", "--results-dir", str(tmp_path)] + TINY, capsys)
    assert code == 0
    folder = tmp_path / "synthetic"
    results = json.loads((folder / "l1.json").read_text())
    assert (folder / "l1.png").stat().st_size > 0 and (folder / "l1.pdf").stat().st_size > 0
    assert not list(folder.glob(".*.tmp"))
    assert results["config"]["mode"] == "l1" and len(results["runs"]) == 4
    for record in results["runs"]:
        for key in ("mode", "strength", "seed", "d", "m", "width", "final_loss", "steps", "train_acc",
                    "activation_sparsity", "dead_neurons", "flip_margin_set", "flip_theory_median",
                    "flip_attack_median", "sqrt_d", "theory_scale"):
            assert key in record
        assert record["theory_scale"] == pytest.approx(math.sqrt(60 / 6))
        assert len(record["flip_theory_per_point"]) == 6
    assert "flip_theory" in out and "sqrt(d/m)" in out


def test_same_seed_same_results(tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        assert run(["--mode", "dropout", "--strengths", "0.5", "--results-dir", str(folder)] + TINY, capsys)[0] == 0
    runs = [json.loads((folder / "synthetic" / "dropout.json").read_text())["runs"] for folder in (first, second)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("argv, fragment", [
    (["--mode", "sparse"], "invalid choice"),
    (["--mode", "l1", "--d", "0"], "--d"),
    (["--mode", "l1", "--width", "-3"], "--width"),
    (["--mode", "l1", "--strengths=-1e-5"], ">= 0"),
    (["--mode", "dropout", "--strengths", "1.0"], "[0, 1)"),
    (["--mode", "l1", "--steps", "0"], "--steps"),
    (["--mode", "l1", "--seeds", "1", "1"], "twice"),
])
def test_bad_input_exits_2_with_one_line(argv, fragment, capsys, tmp_path):
    code, _, err = run(argv + ["--results-dir", str(tmp_path)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err


def test_unwritable_results_dir_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run(["--mode", "l1", "--results-dir", str(blocker)] + TINY, capsys)
    assert code == 2 and "--results-dir" in err and err.count("\n") == 1
    assert blocker.read_text() == "not a folder"
