"""Figures, summary and per-seed table of ``main.py --mode vis`` (vis.report.make_figures) from records written into
a result store here. The trained model (seed) is the unit: no figure or table pools images across seeds."""
import csv
import hashlib
import json
import logging
from types import SimpleNamespace

import matplotlib.image
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from cli_support import assert_usage_error, run_cli
from common.errors import ConfigError, FileProblem
from evaluation.config import EvalConfig
from evaluation.metrics import attack_metrics
from main import main
from models import SimpleCNN
from records.parts import AttackResult, Check
from records.store import ResultStore
from vis import figures
from vis.report import make_figures
from vis_fixture import DATASET, attack_entry, minimal_from, realistic_results, spec, write_result

LAYER_NAMES = SimpleCNN.LAYER_NAMES
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METHOD_STEMS = ("fig1_per_layer", "fig2_strength_sweep", "fig3_queries", "fig4_robustness_vs_sparsity",
                "fig5_robustness_curves", "fig6_eps_star_per_layer", "fig7_eps_star_vs_sparsity")
SPARSITY = {"conv1": 0.4, "conv2": 0.5, "conv3": 0.6, "conv4": 0.6, "fc1": 0.7, "fc2": 0.6, "fc3": 0.0}


def folder(root):
    return root / DATASET / "simple_cnn"


def draw(root, method="l1", **options):
    return make_figures(root, DATASET, method, **options)


def exact_results(root):
    """Hand-picked numbers whose mean ± std over two seeds is known: written out of layer order on purpose."""
    for seed, (clean, median) in enumerate([(0.70, 800.0), (0.72, 1200.0)]):
        write_result(root, spec("l1", "fc1", 0.01, seed), 0.60, {**SPARSITY, "fc1": 0.9},
                     {"pgd": attack_entry("pgd", 500, 300, 295)})
        write_result(root, spec("l1", "conv3", 0.01, seed), 0.65, {**SPARSITY, "conv3": 0.83},
                     {"pgd": attack_entry("pgd", 500, 325 + seed, 300 + seed, robust=0.05),
                      "nes_untargeted_m0": attack_entry("nes_untargeted_m0", 200, 130, 52, median=median)})
        write_result(root, spec("standard", None, 0.0, seed), clean, SPARSITY,
                     {"pgd": attack_entry("pgd", 500, 350, 350),
                      "nes_untargeted_m0": attack_entry("nes_untargeted_m0", 200, 140, 119, median=600.0)},
                     checks=[Check("pgd_eps1_success", "failed" if seed else "passed", "-")])  # seed 1's failed
    return root


def arms(root, method="l1"):
    return figures.MethodArms.of(method, ResultStore(root).records(DATASET))


def file_hashes(paths):
    return {p.name + p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def points(ax):
    """x, y, x, y, ... of every single-point marker drawn on ``ax`` (one per seed in figures 6 and 7), by x."""
    found = sorted((float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in ax.lines
                   if len(line.get_xdata()) == 1)
    return [value for point in found for value in point]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Both methods beside one baseline, sweeps on two layers, two seeds, dropout without targeted NES, fc2 without
    momentum 0.9."""
    root = realistic_results(tmp_path_factory.mktemp("vis") / "results")
    return root, draw(root)


def test_every_figure_is_written_as_valid_png_and_pdf(full_run):
    root, written = full_run
    expected = {folder(root) / "l1" / f"{stem}.{ext}" for stem in METHOD_STEMS for ext in ("png", "pdf")}
    expected |= {folder(root) / f"fig3_queries_by_method.{ext}" for ext in ("png", "pdf")}
    expected |= {folder(root) / "l1" / "summary.md", folder(root) / "l1" / "eps_star_per_seed.csv"}
    assert set(written) == expected
    for path in written:
        data = path.read_bytes()
        if path.suffix == ".png":
            assert data.startswith(PNG_MAGIC)
            height, width, _ = matplotlib.image.imread(path).shape
            assert width >= 1200 and height >= 600  # at least 8 x 4 inches at 150 dpi
            assert Image.open(path).info["dpi"] == pytest.approx((150, 150), abs=0.1)
        elif path.suffix == ".pdf":
            assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


def test_same_inputs_give_identical_bytes(full_run):
    root, written = full_run
    before = file_hashes(written)
    assert file_hashes(draw(root)) == before
    # Two renders within one second would agree even with a timestamp inside, so also rule those out directly.
    for path in written:
        data = path.read_bytes()
        assert b"CreationDate" not in data and b"tIME" not in data and b"Software" not in data


def test_summary_holds_the_given_numbers_in_layer_order(tmp_path):
    root = exact_results(tmp_path / "results")
    draw(root)
    summary = (folder(root) / "l1" / "summary.md").read_text()
    assert "| standard | 0, 1 | 10000 | 71.0 ± 1.4 | 500 | 0.0 ± 0.0 | — | — | failed check pgd_eps1_success (seed 1) |" \
        in summary
    assert "| conv3 (λ=0.01) | 0, 1 | 500 | 325, 326 | 5.0 ± 0.0 | 92.3 ± 0.0 | 95.0 ± 0.0 |" in summary
    # fooled/correct per seed, never summed over seeds; the seeds' median queries 800 and 1200: 1000 ± 283
    assert ("| conv3 (λ=0.01) | 0, 1 | 200 | 130 | 39.0 ± 0.0 | 40.0 ± 0.0 | 61.0 ± 0.0 | 52/130, 52/130 | "
            "1000 ± 283 |") in summary
    assert "| conv3 (λ=0.01) | 0, 1 | 10000 | 65.0 ± 0.0 | 500 | 5.0 ± 0.0 | 83.0 ± 0.0 | 60.0 ± 0.0 |" in summary
    assert "Not evaluated with this attack: fc1 (λ=0.01)." in summary
    assert summary.index("| conv3 (λ=0.01)") < summary.index("| fc1 (λ=0.01)")
    assert "fig2_strength_sweep not drawn in this run" in summary
    assert "| standard_seed1 | failed |" in summary


def test_reads_the_attack_entries_that_eval_writes(tmp_path):
    """Entries made by evaluation.metrics.attack_metrics (nulls for empty denominators) are accepted."""
    y = torch.tensor([0, 1, 2, 3])
    outcome = {"clean_pred": torch.tensor([0, 1, 0, 0]), "adv_pred": torch.tensor([1, 1, 0, 0]),
               "success": torch.tensor([True, False, True, True]), "queries": torch.tensor([400, 20000, 1, 1])}
    fooled_none = {**outcome, "clean_pred": torch.tensor([1, 0, 0, 0]), "adv_pred": torch.tensor([1, 0, 0, 0]),
                   "success": torch.tensor([True] * 4)}
    pgd = SimpleNamespace(name="pgd", threat_model="white-box", reference=False, settings=lambda: {"eps": 0.1})
    nes = SimpleNamespace(name="nes", threat_model="black-box", reference=False, settings=dict)
    entries = {"pgd": AttackResult.of(pgd, "PGD", attack_metrics(
                   {k: v for k, v in outcome.items() if k != "queries"}, y, outcome["clean_pred"], False)),
               "nes_untargeted_m0": AttackResult.of(nes, "NES untargeted, momentum 0",
                                                    attack_metrics(outcome, y, outcome["clean_pred"], False)),
               "nes_targeted_m0.9": AttackResult.of(nes, "NES targeted, momentum 0.9",
                                                    attack_metrics(fooled_none, y, fooled_none["clean_pred"], True))}
    write_result(tmp_path, spec("l1", "conv2", 0.01, 3), 0.5, SPARSITY, entries)
    (record,) = ResultStore(tmp_path).records(DATASET)
    assert record.attacks == entries  # as eval made them, read back
    assert not record.attacks["pgd"].counts_queries and record.attacks["pgd"].settings == {"eps": 0.1}
    assert record.attacks["nes_untargeted_m0"].queries.median_queries == pytest.approx(1.0)
    assert record.attacks["nes_untargeted_m0"].queries.median_queries_correct == pytest.approx(400.0)
    assert record.attacks["nes_targeted_m0.9"].success_rate_correct is None  # no initially correct image
    draw(tmp_path, include_baseline=False)
    summary = (folder(tmp_path) / "l1" / "summary.md").read_text()
    assert "| conv2 (λ=0.01) | 3 | 4 | 2 | 25.0 | 50.0 | 75.0 | 1/2 | 400 | 400 | 1 | 200 |" in summary


def test_bars_show_the_seed_means_and_skip_missing_values(tmp_path):
    results = arms(exact_results(tmp_path / "results"))
    ax = Figure().subplots()
    shown = results.shown()
    figures._bars(ax, figures.attack_palette(results), shown,
                  [figures.CLEAN_ACC, figures.attack_metric(results, "pgd", "robust_acc"),
                   figures.attack_metric(results, "nes_untargeted_m0", "median_queries_correct")], note=figures._fooled)
    heights = [[bar.get_height() for bar in container] for container in ax.containers if hasattr(container, "patches")]
    assert heights[0] == pytest.approx([71.0, 65.0, 60.0])
    assert heights[1] == pytest.approx([0.0, 5.0, 1.0])
    assert heights[2] == pytest.approx([600.0, 1000.0])  # fc1 was not attacked with NES: no bar, a note instead
    texts = [t.get_text().strip() for t in ax.texts]
    assert "not run" in texts and "1000 (n 52)" in texts


def test_model_that_did_not_learn_is_marked_and_left_out(tmp_path):
    root = exact_results(tmp_path / "results")
    write_result(root, spec("l1", "conv1", 0.01, 0), 0.11, SPARSITY, {"pgd": attack_entry("pgd", 500, 55, 10)},
                 learned=False, minimal={"linf": minimal_from([0, 0, 1 / 255], 4 / 255)})
    results = arms(root)
    failed = results.at_layer("conv1")[0]
    assert not failed.learned and failed.clean_acc.mean is None and failed.not_learned_seeds == (0,)
    ax = Figure().subplots()
    figures._bars(ax, figures.attack_palette(results), [results.baseline, failed],
                  [figures.CLEAN_ACC, figures.attack_metric(results, "pgd", "robust_acc")])
    assert "did not learn" in [t.get_text().strip() for t in ax.texts]
    assert [len(c.patches) for c in ax.containers if hasattr(c, "patches")] == [1, 1]
    draw(root)
    assert "DID NOT LEARN (seed 0; not compared)" in (folder(root) / "l1" / "summary.md").read_text()
    with open(folder(root) / "l1" / "eps_star_per_seed.csv", newline="") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    assert rows["l1_conv1_s0.01_seed0"]["learned"] == "false"  # listed as a model, marked


def test_default_strength_else_closest_is_shown_per_layer(tmp_path):
    for strength in (1e-5, 0.1, 1.0):
        write_result(tmp_path, spec("l1", "conv3", strength, 0), 0.7, SPARSITY, {})
    for strength in (1e-5, 0.01):
        write_result(tmp_path, spec("l1", "conv1", strength, 0), 0.7, SPARSITY, {})
    for strength in (0.1, 0.4):
        write_result(tmp_path, spec("dropout", "fc2", strength, 0), 0.7, SPARSITY, {})
    records = ResultStore(tmp_path).records(DATASET)
    l1 = figures.MethodArms.of("l1", [r for r in records if r.spec.method == "l1"])
    dropout = figures.MethodArms.of("dropout", [r for r in records if r.spec.method == "dropout"])
    assert [(a.spec.layer, a.spec.strength) for a in l1.shown()] == [("conv1", 0.01), ("conv3", 0.1)]
    assert [(a.spec.layer, a.spec.strength) for a in dropout.shown()] == [("fc2", 0.4)]


def test_white_box_only_results_skip_the_query_figures(tmp_path):
    root = tmp_path / "results"
    write_result(root, spec("standard", None, 0.0, 0), 0.7, SPARSITY, {"pgd": attack_entry("pgd", 100, 70, 69)})
    for method, strength in (("l1", 0.01), ("dropout", 0.3)):
        for layer in ("conv2", "fc1"):
            write_result(root, spec(method, layer, strength, 0), 0.7, SPARSITY,
                         {"pgd": attack_entry("pgd", 100, 70, 69)})
    written = {p.name for p in draw(root, "dropout")}
    assert written == {"fig1_per_layer.png", "fig1_per_layer.pdf", "fig4_robustness_vs_sparsity.png",
                       "fig4_robustness_vs_sparsity.pdf", "summary.md"}
    summary_path = folder(root) / "dropout" / "summary.md"
    summary = summary_path.read_text()
    assert "fig3_queries not drawn in this run (no query-based attack results)." in summary
    assert "earlier run" not in summary  # no such file: nothing to warn about
    (folder(root) / "dropout" / "fig3_queries.png").write_bytes(b"from before")
    draw(root, "dropout")
    assert "the fig3_queries file in this folder is from an earlier run" in summary_path.read_text()
    assert "## NES" not in summary and "## PGD (white-box, untargeted)" in summary


def test_no_attack_results_still_give_accuracy_figure_and_table(tmp_path):
    write_result(tmp_path, spec("l1", "conv1", 0.01, 0), 0.7, SPARSITY, {})
    written = {p.name for p in draw(tmp_path, include_baseline=False)}
    assert written == {"fig1_per_layer.png", "fig1_per_layer.pdf", "summary.md"}
    assert "No attack results in these files." in (folder(tmp_path) / "l1" / "summary.md").read_text()


def test_layer_filter_and_one_warning_for_requested_layers_without_results(tmp_path, caplog):
    root = exact_results(tmp_path / "results")
    with caplog.at_level(logging.WARNING, logger="vis.report"):
        draw(root, layers=("conv3", "fc2", "conv4"))
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "fc2, conv4" in message and "python main.py --mode eval --layers fc2 conv4" in message
    summary = (folder(root) / "l1" / "summary.md").read_text()
    assert "| conv3 (λ=0.01)" in summary and "fc1 (λ=0.01)" not in summary


def test_no_results_names_the_eval_command(tmp_path):
    def command(method, layers=None, dataset="cifar10", **options):
        config = EvalConfig.from_options(dataset=dataset, **options)
        return config.command(dataset=dataset, method=method, layers=layers)

    assert command("l1", LAYER_NAMES) == "python main.py --mode eval"
    assert command("l1", dataset="mnist") == "python main.py --mode eval --dataset mnist"
    assert (command("dropout", ["fc1"], quick=True, steps=7, adaptive_schedule=((0, 5), (3, 9)))
            == "python main.py --mode eval --quick --method dropout --layers fc1 --steps 7 --adaptive-schedule 5@0 9@3")
    with pytest.raises(FileProblem, match=r"no results for dropout in .*; run python main.py --mode eval --method "
                                          r"dropout --results-dir .*"):
        draw(tmp_path, "dropout")
    exact_results(tmp_path)
    with pytest.raises(FileProblem, match="run python main.py --mode eval --layers fc3 --results-dir"):
        draw(tmp_path, layers=["fc3"], include_baseline=False)


def test_unknown_layer_and_method_are_usage_errors(tmp_path, capsys):
    status, _, err = run_cli(main, ["--mode", "vis", "--layers", "conv9", "--results-dir", str(tmp_path)], capsys)
    assert_usage_error(status, err, "unknown layer 'conv9'")
    with pytest.raises(ConfigError, match="got 'l2'"):
        draw(tmp_path, "l2")


def _valid_document(tmp_path):
    path = write_result(tmp_path / "scratch", spec("l1", "conv3", 0.01, 0), 0.7, SPARSITY,
                        {"pgd": attack_entry("pgd", 100, 70, 69)})
    return json.loads(path.read_text())


@pytest.mark.parametrize("name, content, problem", [
    ("simple_cnn/l1_conv3_s0.01_seed0.json", "{\"schema_version\": 1,", "malformed JSON"),
    ("simple_cnn/l1_conv3_s0.01_seed0.json", lambda d: {**d, "spec": {**d["spec"], "method": "dropout"}},
     "holds model dropout_conv3_s0.01_seed0 but is named l1_conv3_s0.01_seed0.json"),
    ("simple_cnn/l1_conv3_s0.01_seed0.json", lambda d: {**d, "schema_version": 1}, "schema_version 1"),
    ("simple_cnn/l1_conv3_s0.01_seed0.json", lambda d: {**d, "clean_acc": "high"}, "clean_acc must be a number"),
    ("simple_cnn/l1_conv3_s0.01_seed0.json", lambda d: {**d, "checks": ["ok"]}, "checks must be a list"),
    ("simple_cnn/copy.json", lambda d: d, "holds model l1_conv3_s0.01_seed0 but is named copy.json"),
    ("simple_cnn/l1_conv3_s0.01_seed0.json", lambda d: {**d, "clean_acc": 71.2}, "clean_acc must be a number in"),
    ("simple_cnn/l1_conv3_s0.01_seed0.json", lambda d: {**d, "attacks": {"pgd": {"n": 100}}}, "attacks.pgd.attack is missing"),
    ("elsewhere/l1_conv3_s0.01_seed0.json", lambda d: d, "which belongs in"),
])
def test_malformed_or_misplaced_record_names_the_file_exits_2_and_is_kept(tmp_path, capsys, name, content, problem):
    root = exact_results(tmp_path / "results")
    text = content if isinstance(content, str) else json.dumps(content(_valid_document(tmp_path)))
    bad = root / DATASET / name
    bad.parent.mkdir(exist_ok=True)
    bad.write_text(text)
    with pytest.raises(FileProblem) as raised:
        draw(root)
    message = str(raised.value)
    assert str(bad) in message and problem in message and "\n" not in message
    status, _, err = run_cli(main, ["--mode", "vis", "--results-dir", str(root)], capsys)
    assert_usage_error(status, err, str(bad), problem)
    assert bad.read_text() == text


def test_a_foreign_json_file_is_skipped_with_one_warning(tmp_path, caplog):
    root = exact_results(tmp_path / "results")
    (folder(root) / "notes.json").write_text('{"hello": 1}')
    with caplog.at_level(logging.WARNING, logger="vis.report"):
        written = draw(root)
    assert folder(root) / "l1" / "summary.md" in written
    assert len([r for r in caplog.records if "notes.json" in r.getMessage()]) == 1  # the store is read once


def eps_star_results(root):
    """Two seeds per arm, five images each, in units of 1/255 (0: misclassified clean, None: censored at 8/255).
    Per seed, the median over correctly classified images and over all images; pooling the seeds' images would give
    other numbers (the fc1 arm's pooled medians: 3 and 2.5), which nothing may show."""
    per_seed = {("standard", None): ([0, 1, 2, 3, None], [4, 4, 4, 4, 4]),  # medians 2.5, 4 (correct); 2, 4 (all)
                ("l1", "fc1"): ([0, 2, 3, 4, None], [1, 1, 1, 5, 6])}  # 3.5, 1 (correct); 3, 1 (all)
    for (method, layer), seeds in per_seed.items():
        for seed, values in enumerate(seeds):
            write_result(root, spec(method, layer, 0.0 if layer is None else 0.01, seed), 0.8,
                         {**SPARSITY, "fc1": 0.7 + 0.1 * seed}, {"pgd": attack_entry("pgd", 5, 4, 4)},
                         minimal={"linf": minimal_from([None if v is None else v / 255 for v in values], 8 / 255)})
    return root


def test_eps_star_csv_summary_and_figure_6_show_per_seed_medians_never_pooled_images(tmp_path):
    root = eps_star_results(tmp_path)
    written = draw(root)
    assert folder(root) / "l1" / "fig6_eps_star_per_layer.png" in written
    assert folder(root) / "l1" / "fig5_robustness_curves.png" in written  # from eps*, without --eps-sweep
    with open(folder(root) / "l1" / "eps_star_per_seed.csv", newline="") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    medians = {name: (round(255 * float(row["linf_median_correct"]), 6), round(255 * float(row["linf_median_all"]), 6))
               for name, row in rows.items()}
    assert medians == {"standard_seed0": (2.5, 2), "standard_seed1": (4, 4), "l1_fc1_s0.01_seed0": (3.5, 3),
                       "l1_fc1_s0.01_seed1": (1, 1)}
    seed0 = rows["l1_fc1_s0.01_seed0"]
    assert (seed0["linf_n"], seed0["linf_n_clean_misclassified"], seed0["linf_n_censored"]) == ("5", "1", "1")
    summary = (folder(root) / "l1" / "summary.md").read_text()
    # per seed (3.5 and 1, then 3 and 1), and the seeds' mean ± SD; never the pooled images' medians 3 and 2.5
    assert ("| fc1 (λ=0.01) | 0, 1 | 5 | 1, 0 | 1, 0 | 3.5/255 / 1/255 | 2.25/255 ± 1.77/255 | 3/255 / 1/255 | "
            "2/255 ± 1.41/255 |") in summary

    results = arms(root)
    # figure 5: per eps the mean over seeds of each model's own robust accuracy read off its eps*: at 0, 4/5 and 5/5
    # correct; at the search limit, seed 0's one censored image of five and none of seed 1's
    curve = results.variants[0].eps_star_curve("linf")
    assert (curve[0][1].mean, curve[0][1].count) == (pytest.approx(0.9), 2) and curve[-1][1].mean == pytest.approx(0.1)
    fig = Figure()
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1)
    figures._eps_star_panel(top, results, results.shown(), "linf", True)
    figures._eps_star_panel(bottom, results, results.shown(), "linf", False)
    # one point per seed at its own median (L-inf drawn in units of 1/255); baseline at x 0, fc1 at x 1
    assert points(top) == pytest.approx([-0.15, 2.5, 0.15, 4.0, 0.85, 3.5, 1.15, 1.0])
    assert points(bottom) == pytest.approx([-0.15, 2.0, 0.15, 4.0, 0.85, 3.0, 1.15, 1.0])


def test_dose_response_plots_one_point_per_seed_at_its_measured_sparsity(tmp_path):
    """Figure 7: each model is a point (its layer's sparsity, its median eps* over correct images); the baseline's
    seeds give the band. Values are hand-picked so every point is known."""
    pgd = {"pgd": attack_entry("pgd", 5, 4, 4)}
    for seed, (base, strong) in enumerate([([0, 0.02, 0.03, 0.04, 0.05], [0, 0.05, 0.06, 0.07, None]),
                                           ([0.02, 0.03, 0.03, 0.05, 0.06], [0.04, 0.05, 0.08, 0.09, 0.1])]):
        write_result(tmp_path, spec("standard", None, 0.0, seed), 0.8, {**SPARSITY, "conv1": 0.40 + seed / 100}, pgd,
                     minimal={"linf": minimal_from(base, 0.4)})
        write_result(tmp_path, spec("l1", "conv1", 3.0, seed), 0.8, {**SPARSITY, "conv1": 0.95 + seed / 100}, pgd,
                     minimal={"linf": minimal_from(strong, 0.4)})
    results = arms(tmp_path)
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    figures._dose_panel(ax, results, "conv1", results.variants, "linf", 0.4)
    # baseline seed 0: correct images 0.02..0.05 -> median 0.035; seed 1: all five correct -> 0.03; variant seed 0:
    # correct 0.05, 0.06, 0.07, censored -> 0.065; seed 1: 0.04..0.1 -> 0.08 (L-inf drawn in units of 1/255)
    assert points(ax) == pytest.approx([40, 255 * 0.035, 41, 255 * 0.03, 95, 255 * 0.065, 96, 255 * 0.08])
    paths = draw(tmp_path)
    assert folder(tmp_path) / "l1" / "fig7_eps_star_vs_sparsity.png" in paths
