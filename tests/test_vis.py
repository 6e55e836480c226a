"""Figures and summary of ``main.py --mode vis`` (vis.report.make_figures) from result files made here."""
import hashlib
import json
import logging

import matplotlib.image
import pytest
from matplotlib.figure import Figure
from PIL import Image

from common.errors import UsageError
from models.simple_cnn import LAYER_NAMES
from sparsity.variants import Variant
from vis_fixture import realistic_results, write_result
from vis import figures
from vis.metrics import CLEAN_ACC, robust_acc, success_rate
from vis.report import eval_command, make_figures
from vis.results_io import load_result_files, merge_seeds

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METHOD_STEMS = ("fig1_per_layer", "fig2_strength_sweep", "fig3_nes_queries", "fig4_robustness_vs_sparsity")
SPARSITY = {"conv1": 0.4, "conv2": 0.5, "conv3": 0.6, "conv4": 0.6, "fc1": 0.7, "fc2": 0.6, "fc3": 0.0}


def attack(n, n_correct, success_all, success_correct, robust, median=None, mean=None):
    entry = {"n": n, "n_correct": n_correct, "success_rate_all": success_all,
             "success_rate_correct": success_correct, "robust_acc": robust}
    if median is not None:
        entry.update({"median_queries": median, "mean_queries": mean})
    return entry


def exact_results(root):
    """Hand-picked numbers whose mean ± std over two seeds is known: written out of layer order on purpose."""
    for seed, (clean, pgd_rate, median) in enumerate([(0.70, 0.95, 800.0), (0.72, 0.97, 1200.0)]):
        write_result(root, "l1", Variant("l1", "fc1", 0.01, seed), 0.60, {**SPARSITY, "fc1": 0.9},
                     {"pgd": attack(500, 300, 0.99, 0.98, 0.01)})
        write_result(root, "l1", Variant("l1", "conv3", 0.01, seed), 0.65, {**SPARSITY, "conv3": 0.83},
                     {"pgd": attack(500, 325 + seed, pgd_rate, 0.9, 0.05),
                      "nes_untargeted_m0": attack(200, 130, 0.5, 0.4, 0.5, median, 1.5 * median)})
        baseline = write_result(root, "l1", Variant.baseline(seed), clean, SPARSITY,
                                {"pgd": attack(500, 350, 1.0, 1.0, 0.0),
                                 "nes_untargeted_m0": attack(200, 140, 0.9, 0.85, 0.1, 600.0, 700.0)})
    document = json.loads(baseline.read_text())  # seed 1's baseline failed one of eval's sanity checks
    document["checks"].append({"name": "pgd_eps1_success", "passed": False, "detail": "0.95 < 0.99"})
    baseline.write_text(json.dumps(document))
    return root


def file_hashes(paths):
    return {p.name + p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Both methods, sweeps on two layers, two seeds, dropout without targeted NES, fc2 without momentum 0.9."""
    results_dir = realistic_results(tmp_path_factory.mktemp("vis") / "results")
    return results_dir, make_figures(results_dir, "l1")


def test_every_figure_is_written_as_valid_png_and_pdf(full_run):
    results_dir, written = full_run
    expected = {results_dir / "l1" / f"{stem}.{ext}" for stem in METHOD_STEMS for ext in ("png", "pdf")}
    expected |= {results_dir / f"fig3_nes_queries_l1_vs_dropout.{ext}" for ext in ("png", "pdf")}
    expected.add(results_dir / "l1" / "summary.md")
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
    results_dir, written = full_run
    before = file_hashes(written)
    assert file_hashes(make_figures(results_dir, "l1")) == before
    # Two renders within one second would agree even with a timestamp inside, so also rule those out directly.
    for path in written:
        data = path.read_bytes()
        assert b"CreationDate" not in data and b"tIME" not in data and b"Software" not in data


def test_summary_holds_the_given_numbers_in_layer_order(tmp_path):
    root = exact_results(tmp_path / "results")
    make_figures(root, "l1")
    summary = (root / "l1" / "summary.md").read_text()
    assert "| standard | 0, 1 | 10000 | 71.0 ± 1.4 | — | — | failed check pgd_eps1_success (seed 1) |" in summary
    assert "| conv3 (λ=0.01) | 0, 1 | 500 | 325, 326 | 96.0 ± 1.4 | 90.0 ± 0.0 | 5.0 ± 0.0 |" in summary
    nes_row = ("| conv3 (λ=0.01) | 0, 1 | 200 | 130 | 50.0 ± 0.0 | 40.0 ± 0.0 | 50.0 ± 0.0 "
               "| 1000 ± 283 | 1500 ± 424 |")  # median 800 / 1200 queries
    assert nes_row in summary
    assert "| conv3 (λ=0.01) | 0, 1 | 10000 | 65.0 ± 0.0 | 83.0 ± 0.0 | 60.0 ± 0.0 |" in summary  # own vs standard
    assert "Not evaluated with this attack: fc1 (λ=0.01)." in summary
    assert summary.index("| conv3 (λ=0.01)") < summary.index("| fc1 (λ=0.01)")
    assert "fig2_strength_sweep not drawn in this run" in summary


def test_reads_the_attack_entries_that_eval_writes(tmp_path):
    """Entries made by attacks.evaluate.summarize (extra fields, nulls for empty denominators) are accepted."""
    torch = pytest.importorskip("torch")
    from attacks.evaluate import summarize
    y = torch.tensor([0, 1, 2, 3])
    outcome = {"clean_pred": torch.tensor([0, 1, 0, 0]), "adv_pred": torch.tensor([1, 1, 0, 0]),
               "success": torch.tensor([True, False, True, True]), "queries": torch.tensor([400, 20000, 1, 1])}
    fooled_none = {**outcome, "clean_pred": torch.tensor([1, 0, 0, 0]), "adv_pred": torch.tensor([1, 0, 0, 0]),
                   "success": torch.tensor([True] * 4)}
    entries = {"pgd": summarize({k: v for k, v in outcome.items() if k != "queries"}, y, False),
               "nes_untargeted_m0": summarize(outcome, y, False),
               "nes_targeted_m0.9": summarize(fooled_none, y, True)}
    write_result(tmp_path, "l1", Variant("l1", "conv2", 0.01, 3), 0.5, SPARSITY, entries)
    (result,) = load_result_files(tmp_path, "l1")
    assert result.attacks["nes_untargeted_m0"]["median_queries"] == pytest.approx(1.0)
    assert result.attacks["nes_untargeted_m0"]["success_rate_correct"] == pytest.approx(0.5)
    assert result.attacks["nes_targeted_m0.9"]["success_rate_correct"] is None  # no initially correct sample
    make_figures(tmp_path, "l1", include_baseline=False)
    assert "| conv2 (λ=0.01) | 3 | 4 | 2 | 75.0 | 50.0 | 25.0 | 1 | 134 | 200 | 5100 |" in (tmp_path / "l1" / "summary.md").read_text()


def test_bars_show_the_seed_means_and_skip_missing_values(tmp_path):
    results = merge_seeds("l1", tmp_path, load_result_files(exact_results(tmp_path / "results"), "l1"))
    ax = Figure().subplots()
    shown = [results.baseline] + results.one_per_layer()
    figures._grouped_bars(ax, shown, [CLEAN_ACC, robust_acc("pgd"), success_rate("nes_untargeted_m0")],
                          ["C0", "C1", "C2"])
    heights = [[bar.get_height() for bar in container] for container in ax.containers if hasattr(container, "patches")]
    assert heights[0] == pytest.approx([71.0, 65.0, 60.0])
    assert heights[1] == pytest.approx([0.0, 5.0, 1.0])
    assert heights[2] == pytest.approx([90.0, 50.0])  # fc1 was not attacked with NES: no bar, a note instead
    assert "not run" in [t.get_text().strip() for t in ax.texts]


def test_default_strength_else_closest_is_shown_per_layer(tmp_path):
    for strength in (1e-5, 0.1, 1.0):
        write_result(tmp_path, "l1", Variant("l1", "conv3", strength, 0), 0.7, SPARSITY, {})
    for strength in (1e-5, 0.01):
        write_result(tmp_path, "l1", Variant("l1", "conv1", strength, 0), 0.7, SPARSITY, {})
    for strength in (0.1, 0.4):
        write_result(tmp_path, "dropout", Variant("dropout", "fc2", strength, 0), 0.7, SPARSITY, {})
    l1 = merge_seeds("l1", tmp_path, load_result_files(tmp_path, "l1"))
    dropout = merge_seeds("dropout", tmp_path, load_result_files(tmp_path, "dropout"))
    assert [(v.layer, v.strength) for v in l1.one_per_layer()] == [("conv1", 0.01), ("conv3", 0.1)]
    assert [(v.layer, v.strength) for v in dropout.one_per_layer()] == [("fc2", 0.4)]
    assert l1.swept_layers() == ("conv1", "conv3")


def test_pgd_only_results_skip_the_nes_figures(tmp_path):
    root = tmp_path / "results"
    for method, strength in (("l1", 0.01), ("dropout", 0.3)):
        for variant in (Variant.baseline(0), Variant(method, "conv2", strength, 0),
                        Variant(method, "fc1", strength, 0)):
            write_result(root, method, variant, 0.7, SPARSITY, {"pgd": attack(100, 70, 0.99, 0.98, 0.01)})
    written = {p.name for p in make_figures(root, "dropout")}
    assert written == {"fig1_per_layer.png", "fig1_per_layer.pdf", "fig4_robustness_vs_sparsity.png",
                       "fig4_robustness_vs_sparsity.pdf", "summary.md"}
    summary = (root / "dropout" / "summary.md").read_text()
    assert "fig3_nes_queries not drawn in this run (no NES results)" in summary
    assert "## NES" not in summary and "## PGD" in summary


def test_no_attack_results_still_give_accuracy_figure_and_table(tmp_path):
    write_result(tmp_path, "l1", Variant("l1", "conv1", 0.01, 0), 0.7, SPARSITY, {})
    written = {p.name for p in make_figures(tmp_path, "l1", include_baseline=False)}
    assert written == {"fig1_per_layer.png", "fig1_per_layer.pdf", "summary.md"}
    assert "No attack results in these files." in (tmp_path / "l1" / "summary.md").read_text()


def test_layer_filter_and_one_warning_for_requested_variants_without_results(tmp_path, caplog):
    root = exact_results(tmp_path / "results")
    with caplog.at_level(logging.WARNING, logger="vis.report"):
        make_figures(root, "l1", layers=("conv3", "fc2", "conv4"))
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "conv4, fc2" in message and "python main.py --mode eval --layers conv4 fc2" in message
    summary = (root / "l1" / "summary.md").read_text()
    assert "| conv3 (λ=0.01)" in summary and "fc1 (λ=0.01)" not in summary


def test_no_results_names_the_eval_command(tmp_path):
    assert eval_command("l1", LAYER_NAMES, "results") == "python main.py --mode eval"
    with pytest.raises(UsageError, match=r"no results for dropout in .*; run python main.py --mode eval --dropout "
                                         r"--results-dir .* first"):
        make_figures(tmp_path, "dropout")
    exact_results(tmp_path)
    with pytest.raises(UsageError, match="run python main.py --mode eval --layers fc3 --results-dir"):
        make_figures(tmp_path, "l1", layers=["fc3"], include_baseline=False)


def test_unknown_layer_and_method_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown layer 'conv9'"):
        make_figures(tmp_path, "l1", layers=["conv9"])
    with pytest.raises(UsageError, match="unknown method 'l2'"):
        make_figures(tmp_path, "l2")


def _valid_document(tmp_path):
    path = write_result(tmp_path / "scratch", "l1", Variant("l1", "conv3", 0.01, 0), 0.7, SPARSITY,
                        {"pgd": attack(100, 70, 0.99, 0.98, 0.01)})
    return json.loads(path.read_text())


@pytest.mark.parametrize("name, content, problem", [
    ("conv3_s0.01_seed0.json", "{\"schema_version\": 1,", "malformed JSON"),
    ("notes.json", json.dumps({"hello": "world"}), "no schema_version"),
    ("conv3_s0.01_seed0.json", lambda d: {**d, "method": "dropout"}, "method 'dropout' but it sits in results/l1"),
    ("conv3_s0.01_seed0.json", lambda d: {**d, "schema_version": 2}, "schema_version 2"),
    ("copy.json", lambda d: d, "must be conv3_s0.01_seed0.json"),
    ("conv3_s0.01_seed0.json", lambda d: {**d, "clean_acc": 71.2}, "clean_acc must be a number in"),
    ("conv3_s0.01_seed0.json", lambda d: {**d, "attacks": {"pgd": {"n": 100}}}, "attacks.pgd.n_correct"),
])
def test_malformed_or_foreign_json_names_the_file_and_is_kept(tmp_path, name, content, problem):
    root = exact_results(tmp_path / "results")
    text = content if isinstance(content, str) else json.dumps(content(_valid_document(tmp_path)))
    bad = root / "l1" / name
    bad.write_text(text)
    with pytest.raises(UsageError) as raised:
        make_figures(root, "l1")
    message = str(raised.value)
    assert str(bad) in message and problem in message and "\n" not in message
    assert bad.read_text() == text
