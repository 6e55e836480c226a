"""Figures and summary of ``main.py --mode vis`` (vis.report.make_figures) from result files made here."""
import csv
import hashlib
import json
import logging
from types import SimpleNamespace

import matplotlib.image
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from common.errors import ConfigError, FileProblem
from evaluation.config import EvalConfig
from evaluation.metrics import attack_metrics
from records.parts import AttackResult, Check
from records.record import load_records
from models import SimpleCNN
from sparsity.variants import Variant
from vis import figures
from vis.metrics import CLEAN_ACC, median_queries, robust_acc
from vis.report import make_figures
from vis.results import merge_seeds
from vis_fixture import attack_entry, minimal_from, realistic_results, write_result

LAYER_NAMES = SimpleCNN.LAYER_NAMES
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METHOD_STEMS = ("fig1_per_layer", "fig2_strength_sweep", "fig3_queries", "fig4_robustness_vs_sparsity",
                "fig5_robustness_curves", "fig6_eps_star_per_layer", "fig7_eps_star_vs_sparsity")
SPARSITY = {"conv1": 0.4, "conv2": 0.5, "conv3": 0.6, "conv4": 0.6, "fc1": 0.7, "fc2": 0.6, "fc3": 0.0}


def exact_results(root):
    """Hand-picked numbers whose mean ± std over two seeds is known: written out of layer order on purpose."""
    for seed, (clean, fooled, median) in enumerate([(0.70, 300, 800.0), (0.72, 310, 1200.0)]):
        write_result(root, "l1", Variant("l1", "fc1", 0.01, seed), 0.60, {**SPARSITY, "fc1": 0.9},
                     {"pgd": attack_entry("pgd", 500, 300, 295)})
        write_result(root, "l1", Variant("l1", "conv3", 0.01, seed), 0.65, {**SPARSITY, "conv3": 0.83},
                     {"pgd": attack_entry("pgd", 500, 325 + seed, 300 + seed, robust=0.05),
                      "nes_untargeted_m0": attack_entry("nes_untargeted_m0", 200, 130, 52, median=median)})
        write_result(root, "l1", Variant.baseline(seed), clean, SPARSITY,
                     {"pgd": attack_entry("pgd", 500, 350, 350),
                      "nes_untargeted_m0": attack_entry("nes_untargeted_m0", 200, 140, 119, median=600.0)},
                     checks=[Check("pgd_eps1_success", "failed" if seed else "passed", "-")])  # seed 1's failed
    return root


def merged(root, method="l1"):
    records = load_records(root / method, method)
    return merge_seeds(method, root / method, records)


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
    expected |= {results_dir / f"fig3_queries_by_method.{ext}" for ext in ("png", "pdf")}
    expected |= {results_dir / "l1" / "summary.md", results_dir / "l1" / "eps_star.csv"}
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
    assert "| standard | 0, 1 | 10000 | 71.0 ± 1.4 | 500 | 0.0 ± 0.0 | — | — | failed check pgd_eps1_success (seed 1) |" \
        in summary
    assert "| conv3 (λ=0.01) | 0, 1 | 500 | 325, 326 | 5.0 ± 0.0 | 92.3 ± 0.0 | 95.0 ± 0.0 |" in summary
    assert "| conv3 (λ=0.01) | 0, 1 | 200 | 130 | 39.0 ± 0.0 | 40.0 ± 0.0 | 61.0 ± 0.0 | 104/260 | 1000 ± 283 |" \
        in summary
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
                   {k: v for k, v in outcome.items() if k != "queries"}, y, False)),
               "nes_untargeted_m0": AttackResult.of(nes, "NES untargeted, momentum 0",
                                                    attack_metrics(outcome, y, False)),
               "nes_targeted_m0.9": AttackResult.of(nes, "NES targeted, momentum 0.9",
                                                    attack_metrics(fooled_none, y, True))}
    write_result(tmp_path, "l1", Variant("l1", "conv2", 0.01, 3), 0.5, SPARSITY, entries)
    (record,) = load_records(tmp_path / "l1", "l1")
    assert record.attacks == entries  # as eval made them, read back
    assert not record.attacks["pgd"].counts_queries and record.attacks["pgd"].settings == {"eps": 0.1}
    assert record.attacks["nes_untargeted_m0"].queries.median_queries == pytest.approx(1.0)
    assert record.attacks["nes_untargeted_m0"].queries.median_queries_correct == pytest.approx(400.0)
    assert record.attacks["nes_targeted_m0.9"].success_rate_correct is None  # no initially correct image
    make_figures(tmp_path, "l1", include_baseline=False)
    summary = (tmp_path / "l1" / "summary.md").read_text()
    assert "| conv2 (λ=0.01) | 3 | 4 | 2 | 25.0 | 50.0 | 75.0 | 1/2 | 400 | 400 | 1 | 200 |" in summary


def test_bars_show_the_seed_means_and_skip_missing_values(tmp_path):
    results = merged(exact_results(tmp_path / "results"))
    ax = Figure().subplots()
    shown = [results.baseline] + results.one_per_layer()
    figures._grouped_bars(ax, figures.attack_palette(results), shown, [CLEAN_ACC, robust_acc(results, "pgd"),
                                      median_queries(results, "nes_untargeted_m0")],
                          annotations=figures._fooled_text)
    heights = [[bar.get_height() for bar in container] for container in ax.containers if hasattr(container, "patches")]
    assert heights[0] == pytest.approx([71.0, 65.0, 60.0])
    assert heights[1] == pytest.approx([0.0, 5.0, 1.0])
    assert heights[2] == pytest.approx([600.0, 1000.0])  # fc1 was not attacked with NES: no bar, a note instead
    texts = [t.get_text().strip() for t in ax.texts]
    assert "not run" in texts and "1000 (104/260)" in texts


def test_variant_that_did_not_learn_is_marked_and_left_out(tmp_path):
    root = exact_results(tmp_path / "results")
    write_result(root, "l1", Variant("l1", "conv1", 0.01, 0), 0.11, SPARSITY,
                 {"pgd": attack_entry("pgd", 500, 55, 10)}, learned=False)
    results = merged(root)
    collapsed = results.at_layer("conv1")[0]
    assert not collapsed.learned and collapsed.clean_acc.mean is None
    ax = Figure().subplots()
    figures._grouped_bars(ax, figures.attack_palette(results), [results.baseline, collapsed],
                          [CLEAN_ACC, robust_acc(results, "pgd")])
    assert "did not learn" in [t.get_text().strip() for t in ax.texts]
    assert [len(c.patches) for c in ax.containers if hasattr(c, "patches")] == [1, 1]
    make_figures(root, "l1")
    assert "DID NOT LEARN (seed 0; not compared)" in (root / "l1" / "summary.md").read_text()


def test_default_strength_else_closest_is_shown_per_layer(tmp_path):
    for strength in (1e-5, 0.1, 1.0):
        write_result(tmp_path, "l1", Variant("l1", "conv3", strength, 0), 0.7, SPARSITY, {})
    for strength in (1e-5, 0.01):
        write_result(tmp_path, "l1", Variant("l1", "conv1", strength, 0), 0.7, SPARSITY, {})
    for strength in (0.1, 0.4):
        write_result(tmp_path, "dropout", Variant("dropout", "fc2", strength, 0), 0.7, SPARSITY, {})
    l1, dropout = merged(tmp_path, "l1"), merged(tmp_path, "dropout")
    assert [(v.layer, v.strength) for v in l1.one_per_layer()] == [("conv1", 0.01), ("conv3", 0.1)]
    assert [(v.layer, v.strength) for v in dropout.one_per_layer()] == [("fc2", 0.4)]
    assert l1.swept_layers() == ("conv1", "conv3")


def test_white_box_only_results_skip_the_query_figures(tmp_path):
    root = tmp_path / "results"
    for method, strength in (("l1", 0.01), ("dropout", 0.3)):
        for variant in (Variant.baseline(0), Variant(method, "conv2", strength, 0),
                        Variant(method, "fc1", strength, 0)):
            write_result(root, method, variant, 0.7, SPARSITY, {"pgd": attack_entry("pgd", 100, 70, 69)})
    written = {p.name for p in make_figures(root, "dropout")}
    assert written == {"fig1_per_layer.png", "fig1_per_layer.pdf", "fig4_robustness_vs_sparsity.png",
                       "fig4_robustness_vs_sparsity.pdf", "summary.md"}
    summary = (root / "dropout" / "summary.md").read_text()
    assert "fig3_queries not drawn in this run (no query-based attack results)." in summary
    assert "earlier run" not in summary  # no such file: nothing to warn about
    (root / "dropout" / "fig3_queries.png").write_bytes(b"from before")
    make_figures(root, "dropout")
    assert "the fig3_queries file in this folder is from an earlier run" in (root / "dropout" / "summary.md").read_text()
    assert "## NES" not in summary and "## PGD (white-box, untargeted)" in summary


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
    assert "fc2, conv4" in message and "python main.py --mode eval --layers fc2 conv4" in message
    summary = (root / "l1" / "summary.md").read_text()
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
        make_figures(tmp_path, "dropout")
    exact_results(tmp_path)
    with pytest.raises(FileProblem, match="run python main.py --mode eval --layers fc3 --results-dir"):
        make_figures(tmp_path, "l1", layers=["fc3"], include_baseline=False)


def test_unknown_layer_and_method_are_usage_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown layer 'conv9'"):
        make_figures(tmp_path, "l1", layers=["conv9"])
    with pytest.raises(ConfigError, match="got 'l2'"):
        make_figures(tmp_path, "l2")


def _valid_document(tmp_path):
    path = write_result(tmp_path / "scratch", "l1", Variant("l1", "conv3", 0.01, 0), 0.7, SPARSITY,
                        {"pgd": attack_entry("pgd", 100, 70, 69)})
    return json.loads(path.read_text())


@pytest.mark.parametrize("name, content, problem", [
    ("conv3_s0.01_seed0.json", "{\"schema_version\": 1,", "malformed JSON"),
    ("conv3_s0.01_seed0.json", lambda d: {**d, "method": "dropout"}, "method 'dropout' but it sits in a l1 results"),
    ("conv3_s0.01_seed0.json", lambda d: {**d, "schema_version": 1}, "schema_version 1"),
    ("conv3_s0.01_seed0.json", lambda d: {**d, "clean_acc": "high"}, "clean_acc must be a number"),
    ("conv3_s0.01_seed0.json", lambda d: {**d, "checks": ["ok"]}, "checks must be a list"),
    ("copy.json", lambda d: d, "holds variant conv3_s0.01_seed0 but is named copy.json"),
    ("conv3_s0.01_seed0.json", lambda d: {**d, "clean_acc": 71.2}, "clean_acc must be a number in"),
    ("conv3_s0.01_seed0.json", lambda d: {**d, "attacks": {"pgd": {"n": 100}}}, "attacks.pgd.n_correct"),
])
def test_malformed_or_foreign_json_names_the_file_and_is_kept(tmp_path, name, content, problem):
    root = exact_results(tmp_path / "results")
    text = content if isinstance(content, str) else json.dumps(content(_valid_document(tmp_path)))
    bad = root / "l1" / name
    bad.write_text(text)
    with pytest.raises(FileProblem) as raised:
        make_figures(root, "l1")
    message = str(raised.value)
    assert str(bad) in message and problem in message and "\n" not in message
    assert bad.read_text() == text


def test_eps_star_medians_intervals_and_paired_differences_in_the_table_and_csv(tmp_path):
    limit = 4 / 255
    pgd = {"pgd": attack_entry("pgd", 5, 4, 4)}
    # baseline: median 2/255; variant: median 3/255, two censored; per image +0, +1, +1, +inf, unknown: median +1/255
    write_result(tmp_path, "l1", Variant.baseline(0), 0.8, SPARSITY, pgd,
                 minimal={"linf": minimal_from([0, 1 / 255, 2 / 255, 3 / 255, None], limit)})
    write_result(tmp_path, "l1", Variant("l1", "fc1", 0.01, 0), 0.8, SPARSITY, pgd,
                 minimal={"linf": minimal_from([0, 2 / 255, 3 / 255, None, None], limit)})
    make_figures(tmp_path, "l1")
    summary = (tmp_path / "l1" / "summary.md").read_text()
    assert "### L-inf (search limit 4/255)" in summary
    assert "| standard | 0 | 5 | 1 | 1 | 2/255 |" in summary
    assert "| fc1 (λ=0.01) | 0 | 5 | 1 | 2 | 3/255 |" in summary
    assert "+1/255 [" in summary and "(n = 5, 1 censored in both) |" in summary
    with open(tmp_path / "l1" / "eps_star.csv", newline="") as handle:
        rows = {row["variant"]: row for row in csv.DictReader(handle)}
    assert float(rows["standard"]["median"]) == pytest.approx(2 / 255) and rows["standard"]["not_paired"]
    fc1 = rows["fc1 (λ=0.01)"]
    assert float(fc1["median"]) == pytest.approx(3 / 255) and fc1["n_censored"] == "2"
    assert float(fc1["paired_median_low"]) == float(fc1["paired_median_high"]) == pytest.approx(1 / 255)
    assert fc1["paired_n_unknown"] == "1" and fc1["paired_high"] == ""  # reaches past the limit
    assert (tmp_path / "l1" / "fig6_eps_star_per_layer.png").exists()
    assert (tmp_path / "l1" / "fig5_robustness_curves.png").exists()  # from eps*, without --eps-sweep


def test_dose_response_plots_one_point_per_seed_at_its_measured_sparsity(tmp_path):
    """Figure 7: each model is a point (its layer's sparsity, its median eps* over correct images); the baseline's
    seeds give the band. Values are hand-picked so every point is known."""
    limit = 0.4
    pgd = {"pgd": attack_entry("pgd", 5, 4, 4)}
    for seed, (base, strong) in enumerate([([0, 0.02, 0.03, 0.04, 0.05], [0, 0.05, 0.06, 0.07, None]),
                                           ([0.02, 0.03, 0.03, 0.05, 0.06], [0.04, 0.05, 0.08, 0.09, 0.1])]):
        write_result(tmp_path, "l1", Variant.baseline(seed), 0.8, {**SPARSITY, "conv1": 0.40 + seed / 100}, pgd,
                     minimal={"linf": minimal_from(base, limit)})
        write_result(tmp_path, "l1", Variant("l1", "conv1", 3.0, seed), 0.8, {**SPARSITY, "conv1": 0.95 + seed / 100},
                     pgd, minimal={"linf": minimal_from(strong, limit)})
    results = merged(tmp_path)
    baseline, variant = results.variants
    # baseline seed 0: correct images 0.02..0.05 -> median 0.035; seed 1: all five correct -> 0.03
    def flat(points):
        return [value for point in points for value in point]

    assert flat(figures._seed_points(baseline, "conv1", "linf")) == pytest.approx([0.40, 0.035, 0.41, 0.03])
    # variant seed 0: correct 0.05, 0.06, 0.07, censored -> median 0.065; seed 1: 0.04..0.1 -> 0.08
    assert flat(figures._seed_points(variant, "conv1", "linf")) == pytest.approx([0.95, 0.065, 0.96, 0.08])
    paths = make_figures(tmp_path, "l1")
    assert tmp_path / "l1" / "fig7_eps_star_vs_sparsity.png" in paths
    assert (tmp_path / "l1" / "fig7_eps_star_vs_sparsity.png").read_bytes().startswith(PNG_MAGIC)


def test_dose_labels_of_saturating_strengths_do_not_cover_each_other():
    """Figure 7 labels each strength beside its point: strengths a point or two of sparsity apart (L1 at conv1
    saturates at 95-99% zeros) get labels on different sides, none covering another or a point."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fig = Figure(figsize=(4.2, 3.4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    points = [("λ=1", 95.2, 0.0178), ("λ=2", 97.9, 0.0170), ("λ=3", 98.2, 0.0170), ("λ=6", 98.6, 0.0208)]
    ax.plot([x for _, x, _ in points], [y for _, _, y in points], "o")
    ax.set_xlim(-3, 103)
    ax.set_ylim(0, 0.025)
    figures._place_labels(ax, points, "C0")
    renderer = fig.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in ax.texts]
    assert [text.get_text() for text in ax.texts] == ["λ=1", "λ=2", "λ=3", "λ=6"]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    marks = ax.transData.transform([(x, y) for _, x, y in points])
    assert not any(box.contains(*mark) for box in boxes for mark in marks)
