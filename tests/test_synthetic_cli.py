"""synthetic_run.py end to end on a tiny configuration, its results file names, and its bad-input exits."""
import json
import math

import pytest

import synthetic_run
from cli_support import assert_usage_error, run_cli

TINY = ["--d", "60", "--m", "6", "--width", "20", "--seeds", "0", "1", "--steps", "300", "--no-progress"]
TINY_NAME = "d60_m6_width20_seeds0-1_steps300"


def run(argv, capsys):
    return run_cli(synthetic_run.main, argv, capsys)


def strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_writes_results_figure_and_table_under_the_configurations_name(tmp_path, capsys):
    code, out, _ = run(["--mode", "l1", "--strengths", "0", "1e-3", "--results-dir", str(tmp_path)] + TINY, capsys)
    assert code == 0
    folder = tmp_path / "synthetic"
    stem = f"l1_{TINY_NAME}".replace("_seeds", "_strengths0-0.001_seeds")
    results = strict_json(folder / f"{stem}.json")
    assert sorted(path.name for path in folder.iterdir()) == [f"{stem}.{ext}" for ext in ("json", "pdf", "png")]
    assert results["config"]["mode"] == "l1" and results["config"]["d"] == 60 and len(results["runs"]) == 4
    assert results["scales"]["theory_scale"] == pytest.approx(math.sqrt(60 / 6))
    for record in results["runs"]:
        for key in ("strength", "seed", "steps", "stop_reason", "converged", "final_loss", "train_acc",
                    "activation_sparsity", "dead_units", "flip_margin_set", "flip_margin_set_censored",
                    "flip_theory_median", "flip_attack_median", "flip_theory_per_point"):
            assert key in record
        assert len(record["flip_attack_per_point"]) == 6
    baseline = results["baseline"]["flip_theory_median_over_theory_scale"]
    unregularised = [run["flip_theory_median"] for run in results["runs"] if run["strength"] == 0]
    assert baseline["per_seed"] == pytest.approx([flip / math.sqrt(10) for flip in unregularised])
    assert [row["strength"] for row in results["strengths"]] == [0, 1e-3]
    assert "theory direction" in out and "sqrt(d/m)" in out and f"wrote {folder / stem}.{{json,png,pdf}}" in out


def test_another_configuration_never_writes_over_the_defaults_results(tmp_path, capsys):
    folder = tmp_path / "synthetic"
    folder.mkdir()
    (folder / "dropout.json").write_text("the default run's results")
    for extra in ([], ["--optimizer", "gd"]):
        argv = ["--mode", "dropout", "--strengths", "0.5", "--results-dir", str(tmp_path)] + TINY + extra
        assert run(argv, capsys)[0] == 0
    assert (folder / "dropout.json").read_text() == "the default run's results"
    assert len(list(folder.glob("dropout_*.json"))) == 2


def test_same_seed_same_results(tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        assert run(["--mode", "dropout", "--strengths", "0.5", "--results-dir", str(folder)] + TINY, capsys)[0] == 0
    runs = [strict_json(next((folder / "synthetic").glob("*.json")))["runs"] for folder in (first, second)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("argv, fragments", [
    (["--mode", "sparse"], ["--mode", "invalid choice"]),
    (["--mode", "l1", "--penalty", "l2"], ["--penalty", "invalid choice"]),
    (["--mode", "l1", "--optimizer", "adam"], ["--optimizer", "invalid choice"]),
    (["--mode", "dropout", "--penalty", "sum"], ["--penalty", "mode l1 only"]),
    (["--mode", "l1", "--strengths", "nan"], ["--strengths", "finite"]),
    (["--mode", "l1", "--strengths", "0", "inf"], ["--strengths", "finite"]),
    (["--mode", "l1", "--strengths=-1e-5"], ["--strengths", ">= 0"]),
    (["--mode", "l1", "--strengths", "0", "0"], ["--strengths", "more than once"]),
    (["--mode", "dropout", "--strengths", "1.0"], ["--strengths", "[0, 1)"]),
    (["--mode", "dropout", "--strengths=-0.1"], ["--strengths", "[0, 1)"]),
    (["--mode", "l1", "--steps", "0"], ["--steps", "at least 1"]),
    (["--mode", "l1", "--steps=-5"], ["--steps", "at least 1"]),
    (["--mode", "l1", "--seeds", "1", "1"], ["--seeds", "more than once"]),
    (["--mode", "l1", "--seeds=-1"], ["--seeds", "[0, 2^32)"]),
    (["--mode", "l1", "--seeds", "4294967296"], ["--seeds", "[0, 2^32)"]),
    (["--mode", "l1", "--d", "0"], ["--d", "at least 1"]),
    (["--mode", "l1", "--m", "0"], ["--m", "at least 1"]),
    (["--mode", "l1", "--width", "-3"], ["--width", "at least 1"]),
    (["--mode", "l1", "--lr", "0"], ["--lr", "> 0"]),
    (["--mode", "l1", "--loss-target", "nan"], ["--loss-target", "finite"]),
    (["--mode", "l1", "--search-limit", "0"], ["--search-limit", "> 0"]),
    (["--mode", "l1", "--threads", "0"], ["--threads", "at least 1"]),
])
def test_bad_input_exits_2_with_one_line(argv, fragments, capsys, tmp_path):
    code, _, err = run(argv + ["--results-dir", str(tmp_path)], capsys)
    assert_usage_error(code, err, *fragments)
    assert "Traceback" not in err and not list(tmp_path.iterdir())


def test_unwritable_results_dir_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run(["--mode", "l1", "--results-dir", str(blocker)] + TINY, capsys)
    assert_usage_error(code, err, "--results-dir")
    assert blocker.read_text() == "not a folder"


def test_censored_baseline_states_the_search_limit_in_units_of_sqrt_d_over_m(tmp_path, capsys):
    argv = ["--mode", "dropout", "--d", "40", "--m", "20", "--width", "30", "--seeds", "3", "4", "5", "--strengths",
            "0", "0.5", "--search-limit", "0.05", "--results-dir", str(tmp_path), "--no-progress"]
    code, out, _ = run(argv, capsys)
    assert code == 0
    # limit 0.05 * sqrt(40) over sqrt(40 / 20): no unregularised seed flips within it
    assert "unregularised median-point flip / sqrt(d/m): >= 0.224 (3/3) (theory direction)" in out
