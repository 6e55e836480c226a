"""The study tables (vis/study.py, vis/comparisons.py): per-seed values over correctly classified images, seed-level
comparisons with baseline-against-baseline rows, the first study's page (docs/studies/first-study.md) checked
against the committed files (its tables, comparisons.csv and each claim's verdict), and the redone study's
(docs/studies/fashion-mnist.md, the README's verdict table): while it runs, the README and the page count its committed
models; once every declared model is in, its tables, verdicts and claims are checked the same way."""
import csv
import io
import re
from dataclasses import replace
from pathlib import Path

import pytest

from common.errors import FileProblem
from common.stats import wilson_interval
from evaluation.record_parts import Check
from sparsity.variants import Variant
from vis import comparisons
from vis.eps_star import eps_text
from vis.results import load_method_results
from vis.study import load_study_tables, study_markdown, verdict_table
from vis.study_figure import plot_study_arms, study_arms_figure
from vis_fixture import attack_entry, minimal_from, write_result

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "docs" / "results" / "first-study"  # the first study, withdrawn (issue 29), kept apart
PAGE = ROOT / "docs" / "studies" / "first-study.md"  # its tables and claims, as published
SPARSITY = {"conv1": 0.4, "fc1": 0.7}
LIMIT = 0.4


def attacks(robust, n=100, queries=None):
    entries = {"autoattack": replace(attack_entry("autoattack", n, 90, 90 - robust, title="AutoAttack"),
                                     threat_model="white-box")}
    if queries:
        entries["square"] = attack_entry("square", 20, 18, 18 - robust // 5, median=queries, title="Square")
    return entries


def eps_star(values):
    return {"linf": minimal_from(values, LIMIT)}


def images(shift):
    """10 images misclassified clean (eps* 0), 90 whose eps* starts at 0.02 + shift."""
    return [0.0] * 10 + [0.02 + shift + 0.001 * i for i in range(90)]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("study")
    results = tmp_path / "cifar10"
    for method in ("l1", "dropout"):
        for seed in (0, 1, 2):
            write_result(results, method, Variant.baseline(seed), 0.9, SPARSITY, attacks(5 + 5 * seed, queries=300),
                         minimal=eps_star(images(0.002 * seed)), train_loss=0.30 + 0.01 * seed)
    # L1 at conv1 (3 seeds) moves every correctly classified image up by 0.05; dropout at fc1 (1 seed) by nothing
    for seed in (0, 1, 2):
        write_result(results, "l1", Variant("l1", "conv1", 0.01, seed), 0.88, {**SPARSITY, "conv1": 0.9},
                     attacks(12, queries=600), minimal=eps_star(images(0.05 + 0.001 * seed)), train_loss=0.40 + 0.01 * seed)
    write_result(results, "dropout", Variant("dropout", "fc1", 0.3, 0), 0.9, SPARSITY, attacks(5),
                 minimal=eps_star(images(0.0)))
    return load_study_tables(tmp_path, "cifar10", ["l1", "dropout"])


def test_wilson_interval_matches_known_values():
    assert wilson_interval(5, 100) == pytest.approx((0.02154, 0.11175), abs=1e-5)
    assert wilson_interval(0, 100)[0] == 0 and wilson_interval(100, 100)[1] == 1
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_each_seed_is_one_value_over_its_correctly_classified_images(study):
    base = study.baseline
    assert base.seeds == (0, 1, 2)
    # the median of 0.02 + shift + 0.001 * (0..89): over the 90 correct images, not the 100 with the ten zeros
    assert base.values["eps_star_correct"] == pytest.approx([0.0645, 0.0665, 0.0685])
    assert base.values["eps_star_all"] == pytest.approx([0.0595, 0.0615, 0.0635])
    assert base.values["robust_acc"] == pytest.approx([0.05, 0.1, 0.15])  # AutoAttack, per seed
    rows = study_markdown(study).split("\n")
    first = next(row for row in rows if row.startswith("| standard | — |"))
    each = " / ".join(eps_text(study.dataset, v, "linf") for v in (0.0645, 0.0665, 0.0685))
    assert "| 5 / 10 / 15 of 100 |" in first and f"| {each} |" in first
    assert "| 10.0 [" in first  # mean over seeds with its cluster bootstrap interval, no pooled k/n
    one = next(row for row in rows if row.startswith("| dropout | fc1 |"))
    low, high = wilson_interval(5, 100)
    assert f"| 5.0 [{100 * low:.1f}, {100 * high:.1f}] (Wilson, one model) |" in one
    assert not any("/300" in row or "n = 300" in row for row in rows)  # nothing pooled over seeds


def test_comparisons_carry_the_baselines_own_rows_and_never_judge_one_or_three_seeds(study):
    rows = [r for r in study.rows if r["statistic"] == "eps_star_correct"]
    nulls = [r for r in rows if r["method"] == "standard"]
    assert [r["arm"] for r in nulls] == ["standard seeds 0 vs 1, 2", "standard seeds 1 vs 0, 2",
                                         "standard seeds 2 vs 0, 1"]
    assert nulls[0]["effect"] == pytest.approx(0.0645 - (0.0665 + 0.0685) / 2)
    l1 = next(r for r in rows if r["method"] == "l1")
    assert l1["effect"] == pytest.approx(0.049) and l1["ci_low"] > 0
    assert l1["p"] == pytest.approx(0.1)  # 3 vs 3 seeds: 20 arrangements, however large the difference
    one = next(r for r in rows if r["method"] == "dropout")
    assert one["n_seeds"] == 1 and one["p"] != one["p"]  # nan: no seed-level test of one seed
    assert {r["verdict"] for r in study.rows} == {"inconclusive"}
    table = study_markdown(study)
    assert f"| standard seeds 0 vs 1, 2 | 1 / 2 | -{eps_text(study.dataset, 0.003, 'linf')} |" in table
    assert f"| l1 conv1 λ=0.01 | 3 / 3 | +{eps_text(study.dataset, 0.049, 'linf')} [" in table


def test_each_arms_fit_is_compared_with_its_baselines_final_training_loss(study):
    rows = {r["arm"]: r for r in study.rows if r["statistic"] == "train_loss"}
    fitted_less = rows["l1 conv1 λ=0.01"]  # seeds 0.40, 0.41, 0.42 against the baseline's 0.30, 0.31, 0.32
    assert (fitted_less["arm_mean"], fitted_less["baseline_mean"]) == pytest.approx((0.41, 0.31))
    assert fitted_less["effect"] == pytest.approx(0.10) and fitted_less["ci_low"] > 0
    assert rows["dropout fc1 p=0.3"]["arm_mean"] is None  # its record names no training loss: not compared
    table = study_markdown(study)
    assert "final training loss: arm / reference" in table and "| 0.410 / 0.310, +0.100 [" in table


def test_comparisons_csv_has_the_issue_columns(study, tmp_path):
    path = comparisons.write_csv(tmp_path, study.rows)
    table = list(csv.DictReader(path.open()))
    assert {"arm", "method", "layer", "strength", "n_seeds", "statistic", "effect", "ci_low", "ci_high", "p",
            "p_holm", "verdict"} <= set(table[0])
    assert len(table) == len(comparisons.STATISTICS) * (3 + 2)  # 3 baseline splits and 2 arms per statistic


def committed():
    return load_study_tables(STUDY, "fashion-mnist", ["l1", "dropout", "kwta"])


def test_the_pages_tables_and_comparisons_csv_are_generated_from_the_committed_fashion_mnist_results():
    page = PAGE.read_text()
    found = re.search(r"<!-- study tables: begin[^\n]*-->\n(.*?)<!-- study tables: end -->", page, re.S)
    assert found, f"{PAGE.name} lost its study-table markers"
    study = committed()
    assert study is not None and len(study.results) == 3, "docs/results/first-study/fashion-mnist/ should hold l1, dropout, kwta"
    regenerate = "; run python experiments/fashion_mnist.py --first-study-tables and paste its output between the markers"
    assert found.group(1) == study_markdown(study), f"{PAGE.name}'s study tables differ from the committed results" \
        + regenerate
    written = (STUDY / "fashion-mnist" / comparisons.CSV_NAME).read_text()
    assert written == comparisons.csv_text(study.rows), "comparisons.csv differs from the committed results" \
        + regenerate


def test_the_dose_response_table_on_the_study_page_is_generated_from_the_committed_results():
    """docs/studies/fashion-mnist.md's dose-response table (issue 26) is what the study script prints from the
    committed files, and its figures 7 are the committed copies of what --mode vis draws from them."""
    script = study_script()
    page = (ROOT / "docs" / "studies" / "fashion-mnist.md").read_text()
    found = re.search(r"<!-- dose-response table: begin[^\n]*-->\n(.*?)<!-- dose-response table: end -->", page, re.S)
    assert found, "fashion-mnist.md lost its dose-response table markers"
    assert found.group(1) == script.dose_tables(), "the dose-response table differs from the committed results; run " \
        "python experiments/fashion_mnist.py --dose-response-tables and paste its output between the markers"
    rows = [line for line in found.group(1).split("\n") if line.startswith("| l1 | conv1 |")
            or line.startswith("| kwta | conv1 |")]
    declared = {(arm.method, f"{arm.strength:g}") for arm in script.DOSE_RESPONSE}
    shown = {(row.split(" | ")[0][2:], row.split(" | ")[2].split("=")[1]) for row in rows}
    assert shown == declared and len(shown) == len(rows)  # every declared dose, once, and nothing added
    for method in ("l1", "kwta"):
        assert f"../figures/fashion_study_{method}_fig7_eps_star_vs_sparsity.png" in page


def test_every_published_claim_has_the_verdict_comparisons_csv_gives():
    claims = re.findall(r"^\| [^|]+ \| `([^`]+)` \| `([^`]+)` \| ([a-z ]+) \|$", PAGE.read_text(), re.M)
    assert len(claims) >= 10, f"{PAGE.name} lost its table of claims and verdicts"
    table = list(csv.DictReader(io.StringIO((STUDY / "fashion-mnist" / comparisons.CSV_NAME).read_text())))
    verdicts = {(row["arm"], row["statistic"]): row["verdict"] for row in table}
    for arm, statistic, verdict in claims:
        assert verdicts.get((arm, statistic)) == verdict, f"{PAGE.name} says {arm} {statistic}: {verdict}"
    # the study's own guarantees: the null is never an effect, one seed is never judged
    assert all(row["verdict"] != "effect" for row in table if row["method"] == "standard")
    assert all(row["verdict"] == "inconclusive" for row in table if row["n_seeds"] == "1")


def test_an_effect_counts_only_where_the_null_stays_null(tmp_path):
    """Ten baseline seeds in two clusters: the null (seeds 0-4 against 5-9) is an effect, so the arm's clear effect
    on that statistic is *null failed*, never *effect*; statistics whose null stays null keep their verdicts."""
    results = tmp_path / "cifar10"
    for seed in range(10):
        write_result(results, "l1", Variant.baseline(seed), 0.9 + 0.001 * (seed % 3), SPARSITY, attacks(5),
                     minimal=eps_star(images(0.01 * (seed >= 5) + 0.0001 * seed)))
        write_result(results, "l1", Variant("l1", "conv1", 1.0, seed), 0.8 + 0.001 * (seed % 3), SPARSITY, attacks(5),
                     minimal=eps_star(images(0.05 + 0.0001 * seed)))
    study = load_study_tables(tmp_path, "cifar10", ["l1"])
    rows = {(r["arm"], r["statistic"]): r for r in study.rows}
    null = rows[("standard seeds 0, 1, 2, 3, 4 vs 5, 6, 7, 8, 9", "eps_star_correct")]
    assert null["verdict"] == "effect" and null["p_holm"] < 0.05  # 2/252 exact, Holm over the 5 splits: 0.04
    arm = rows[("l1 conv1 λ=1", "eps_star_correct")]
    assert arm["p_holm"] < 0.001 and arm["ci_low"] > 0 and arm["verdict"] == "null failed"
    # clean accuracy: the baseline's seeds within 0.2 points, so its null stays null and the arm's 10 points count
    assert rows[("l1 conv1 λ=1", "clean_acc")]["verdict"] == "effect"
    assert "null failed" in study_markdown(study)


def test_adversarially_trained_arms_are_compared_with_the_baseline_trained_the_same_way(tmp_path):
    """The positive control (the adversarially trained baseline) against the standard baseline; sparsity on top of
    adversarial training against the adversarially trained baseline, never pooled with standard training."""
    results = tmp_path / "cifar10"
    for seed in (0, 1, 2):
        write_result(results, "l1", Variant.baseline(seed), 0.9, SPARSITY, attacks(5), minimal=eps_star(images(0.0)))
        write_result(results, "l1", Variant.baseline(seed, "fgsm-rs", 0.1), 0.85, {**SPARSITY, "conv1": 0.55}, attacks(60),
                     minimal=eps_star(images(0.1 + 0.001 * seed)))
        write_result(results, "l1", Variant("l1", "conv1", 1.0, seed, "fgsm-rs", 0.1), 0.84, SPARSITY, attacks(60),
                     minimal=eps_star(images(0.1 + 0.002 * seed)),
                     checks=[Check("minimal_perturbation_methods_agree", "failed" if seed == 1 else "passed", "-")])
        write_result(results, "l1", Variant("l1", "conv1", 1.0, seed), 0.9, SPARSITY, attacks(5),
                     minimal=eps_star(images(0.001 * seed)))
    study = load_study_tables(tmp_path, "cifar10", ["l1"])
    rows = {r["arm"]: r for r in study.rows if r["statistic"] == "eps_star_correct"}
    control = rows["standard + FGSM-RS-AT eps=0.1"]
    assert control["reference"] == "standard" and control["training"] == "fgsm-rs eps=0.1"
    assert control["effect"] == pytest.approx(0.101)
    on_top = rows["l1 conv1 λ=1 + FGSM-RS-AT eps=0.1"]
    assert on_top["reference"] == "standard + FGSM-RS-AT eps=0.1"
    assert on_top["effect"] == pytest.approx(0.001)
    # the arm on top of the control faces the control's own null: its seeds against each other, a Holm family apart
    nulls = [r for r in study.rows if r["statistic"] == "eps_star_correct" and comparisons.is_null(r)]
    assert [r["arm"] for r in nulls] == ["standard seeds 0 vs 1, 2", "standard seeds 1 vs 0, 2",
                                         "standard seeds 2 vs 0, 1"] + [
        f"standard + FGSM-RS-AT eps=0.1 seeds {a} vs {b}" for a, b in (("0", "1, 2"), ("1", "0, 2"), ("2", "0, 1"))]
    assert all(r["reference"] == "standard + FGSM-RS-AT eps=0.1" for r in nulls[3:])
    assert nulls[3]["effect"] == pytest.approx(-0.0015)  # the control's seed 0 against the mean of its seeds 1 and 2
    assert not any(comparisons.is_null(rows[arm]) for arm in rows if " seeds " not in arm)
    plain = rows["l1 conv1 λ=1"]  # standard training: its own three seeds, none of the adversarial ones
    assert plain["reference"] == "standard" and plain["seeds"] == "0 1 2" and plain["effect"] == pytest.approx(0.001)
    # the tables show the control and the arm on top of it with their own levels, never merged into a standard row
    lines = study_markdown(study).split("\n")
    control_row = next(line for line in lines if line.startswith("| standard + FGSM-RS-AT eps=0.1 | — |"))
    assert "| 60 / 60 / 60 of 100 |" in control_row and "| 60.0 [60.0, 60.0] |" in control_row
    on_top_row = next(line for line in lines if line.startswith("| l1 + FGSM-RS-AT eps=0.1 | conv1 | λ=1 | 0, 1, 2 |"))
    assert "| 40.0 ± 0.0 / 55.0 ± 0.0 |" in on_top_row  # zeros at conv1 against the control's (trained the same way)
    # the README's verdict table: each comparison against its own reference, each reference's null first
    verdict_lines = verdict_table(study)
    labels = [line.split(" | ")[:2] for line in verdict_lines[2:]]
    assert labels[:6] == [["| standard seeds 0 vs 1, 2", "standard"], ["| standard seeds 1 vs 0, 2", "standard"],
                          ["| standard seeds 2 vs 0, 1", "standard"]] + [
        [f"| standard + FGSM-RS-AT eps=0.1 seeds {a} vs {b}", "standard + FGSM-RS-AT eps=0.1"]
        for a, b in (("0", "1, 2"), ("1", "0, 2"), ("2", "0, 1"))]
    assert ["| standard + FGSM-RS-AT eps=0.1", "standard"] in labels
    assert ["| l1 conv1 λ=1 + FGSM-RS-AT eps=0.1", "standard + FGSM-RS-AT eps=0.1"] in labels
    control_verdicts = next(line for line in verdict_lines if line.startswith("| standard + FGSM-RS-AT eps=0.1 | "))
    assert control_verdicts.startswith("| standard + FGSM-RS-AT eps=0.1 | standard | 3 / 3 | ")
    # AutoAttack 60 of 100 on every control seed against 5 on the standard's; 3 seeds a side: p >= 0.1, never judged
    assert control_verdicts.endswith("| 60.0 / 5.0, +55.0 [+55.0, +55.0] | 0.3 | inconclusive | 85.0 / 90.0, -5.0 "
                                     "| inconclusive | none |")
    on_top_verdicts = next(line for line in verdict_lines if line.startswith("| l1 conv1 λ=1 + FGSM-RS-AT eps=0.1 |"))
    assert on_top_verdicts.endswith("| minimal_perturbation_methods_agree (seed 1) |")  # the masking sign, beside
    standard_rows = [line for line in lines if line.startswith("| standard | — |") and "AutoAttack" not in line]
    assert len(standard_rows) == 2 and "| 5 / 5 / 5 of 100 |" in standard_rows[0]  # accuracy and black-box tables
    assert any(line.startswith("| standard + FGSM-RS-AT eps=0.1 | — | — | 0, 1, 2 | none |") for line in lines)


def test_the_study_figure_puts_the_positive_control_beside_the_baseline_one_point_per_model(tmp_path):
    """vis/study_figure.py: arms on x (baseline, control, sparse arms), each seed's value where comparisons.csv has
    it, each arm's verdict above it, and each arm's reference band (the control's for the arm on top of it)."""
    results = tmp_path / "cifar10"
    for seed in (0, 1, 2):
        write_result(results, "l1", Variant.baseline(seed), 0.9, SPARSITY, attacks(5), minimal=eps_star(images(0.0)))
        write_result(results, "l1", Variant.baseline(seed, "fgsm-rs", 0.1), 0.85, SPARSITY, attacks(60),
                     minimal=eps_star(images(0.1 + 0.001 * seed)))
        write_result(results, "l1", Variant("l1", "conv1", 1.0, seed, "fgsm-rs", 0.1), 0.84, SPARSITY, attacks(60),
                     minimal=eps_star(images(0.1 + 0.002 * seed)))
        write_result(results, "l1", Variant("l1", "conv1", 1.0, seed), 0.9, SPARSITY, attacks(5),
                     minimal=eps_star(images(0.001 * seed)))
    study = load_study_tables(tmp_path, "cifar10", ["l1"])
    figure = study_arms_figure(study)
    eps_axis_, robust_axis, clean_axis = figure.axes
    labels = [tick.get_text().replace("\n", " ") for tick in clean_axis.get_xticklabels()]
    assert labels == ["standard", "standard + FGSM-RS-AT eps=0.1", "l1 conv1 λ=1", "l1 conv1 λ=1 + FGSM-RS-AT eps=0.1"]
    factor = study.dataset.scale_eps(1.0)
    points = [line for line in eps_axis_.lines if line.get_marker() == "o"]
    assert len(points) == 4 and all(len(line.get_xdata()) == 3 for line in points)  # three seeds per arm
    control = study.arms[[a.adv is not None and a.is_baseline for a in study.arms].index(True)]
    assert sorted(points[1].get_ydata() / factor) == pytest.approx(sorted(control.values["eps_star_correct"]))
    assert all(0.6 < x < 1.4 for x in points[1].get_xdata())  # the control sits at position 1, beside the baseline
    assert [line.get_ydata() for line in robust_axis.lines if line.get_marker() == "o"][1] == pytest.approx([60] * 3)
    verdicts = {row["arm"]: row["verdict"] for row in study.rows if row["statistic"] == "eps_star_correct"}
    shown = [text.get_text() for text in eps_axis_.texts]
    assert shown == [verdicts[label] for label in labels[1:]]  # the baseline has no verdict of its own
    # the arm on top of the control is drawn against the control's band, not the standard baseline's
    bands = [collection.get_paths()[0].vertices[:, 1] for collection in eps_axis_.collections]
    assert min(bands[3]) / factor == pytest.approx(min(control.values["eps_star_correct"]))
    assert plot_study_arms(study, tmp_path / "arms")[0].read_bytes().startswith(b"\x89PNG")


def test_a_folder_with_two_adversarial_trainings_is_refused_naming_both(tmp_path):
    """The adversarially trained models of a folder are merged by (method, layer, strength): two trainings would
    become one row's seeds, so the folder is refused."""
    results = tmp_path / "cifar10"
    write_result(results, "l1", Variant.baseline(0, "fgsm-rs", 0.1), 0.85, SPARSITY, attacks(60),
                 minimal=eps_star(images(0.1)))
    write_result(results, "l1", Variant.baseline(0, "pgd", 0.1), 0.85, SPARSITY, attacks(60),
                 minimal=eps_star(images(0.1)))
    with pytest.raises(FileProblem, match="several adversarial trainings.*fgsm-rs eps=0.1, pgd eps=0.1"):
        load_method_results(results, "l1", None, include_baseline=True, adversarial=True)


# --- the redone study (issue 29), as committed: docs/results/fashion-mnist/ and docs/studies/fashion-mnist.md ---
REDONE_PAGE = ROOT / "docs" / "studies" / "fashion-mnist.md"
REDONE_RESULTS = ROOT / "docs" / "results" / "fashion-mnist"


def study_script():
    import importlib.util
    spec = importlib.util.spec_from_file_location("fashion_mnist_study", ROOT / "experiments" / "fashion_mnist.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def redone_models(script):
    """``(evaluated, declared)``: the committed design models, one entry per checkpoint, and the declared ones, each as
    (record name, method)."""
    records = script.design_records(script.CPU["results_dir"]).values()
    evaluated = [(record.variant.name, record.variant.method) for record in records]
    declared = {(arm.variant(seed).name, arm.method if arm.layer else "standard")
                for arm in script.ARMS for seed in script.CPU_SEEDS}
    return evaluated, declared


def published_redone_study():
    """The study script, for the tests of what is published once every declared model is in (a study still running
    publishes no tables: its count is checked by the test below)."""
    script = study_script()
    evaluated, declared = redone_models(script)
    if set(evaluated) != declared:
        pytest.skip(f"the redone study is running: {len(set(evaluated))} of its {len(declared)} models evaluated; "
                    "its tables, verdicts and claims are published when all are in")
    return script


def test_the_redone_study_holds_each_declared_model_once_and_the_readme_says_how_many():
    script = study_script()
    evaluated, declared = redone_models(script)
    assert len(evaluated) == len(set(evaluated)), "a design model has two checkpoints among the committed records"
    assert set(evaluated) <= declared, f"not declared: {sorted(set(evaluated) - declared)}"
    readme, page = (ROOT / "README.md").read_text(), REDONE_PAGE.read_text()
    if set(evaluated) == declared:
        assert "running" not in readme.split("## What has been found")[1].split("## Quick start")[0]
        return
    count = f"{len(evaluated)} of its {len(declared)} models evaluated"
    assert count in " ".join(readme.split()), f"the README's findings should say the study is running: {count}"
    assert f"{len(evaluated)} of the design's {len(declared)} models evaluated" in " ".join(page.split())


def test_the_redone_studys_tables_and_comparisons_csv_are_generated_from_the_committed_results():
    script = published_redone_study()
    found = re.search(r"<!-- study tables: begin[^\n]*-->\n(.*?)<!-- study tables: end -->", REDONE_PAGE.read_text(),
                      re.S)
    assert found, f"{REDONE_PAGE.name} lost its study-table markers"
    study = script.load_design(script.CPU["results_dir"])
    regenerate = "; run python experiments/fashion_mnist.py --tables and paste its output between the markers"
    assert found.group(1) == study_markdown(study), f"{REDONE_PAGE.name}'s study tables differ from the committed " \
        "results" + regenerate
    written = (REDONE_RESULTS / comparisons.CSV_NAME).read_text()
    assert written == comparisons.csv_text(study.rows), "comparisons.csv differs from the committed results" + regenerate


def test_the_readmes_verdict_table_is_generated_from_the_committed_results_and_leads_the_findings():
    script = published_redone_study()
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- verdict table: begin[^\n]*-->\n(.*?)<!-- verdict table: end -->", readme, re.S)
    assert found, "README.md lost its verdict table markers"
    assert found.group(1) == script.verdicts(), "the README's verdict table differs from the committed results; run " \
        "python experiments/fashion_mnist.py --verdict-table and paste its output between the markers"
    findings = readme.index("## What has been found")
    assert findings < readme.index("<!-- verdict table: begin") < readme.index("- **", findings)


def test_every_claim_of_the_redone_study_has_the_verdict_its_comparisons_csv_gives_and_no_null_is_an_effect():
    published_redone_study()
    claims = re.findall(r"^\| [^|]+ \| `([^`]+)` \| `([^`]+)` \| ([a-z ]+) \|$", REDONE_PAGE.read_text(), re.M)
    assert len(claims) >= 8, f"{REDONE_PAGE.name} lost its table of claims and verdicts"
    table = list(csv.DictReader(io.StringIO((REDONE_RESULTS / comparisons.CSV_NAME).read_text())))
    verdicts = {(row["arm"], row["statistic"]): row["verdict"] for row in table}
    for arm, statistic, verdict in claims:
        assert verdicts.get((arm, statistic)) == verdict, f"{REDONE_PAGE.name} says {arm} {statistic}: {verdict}"
    nulls = [row for row in table if comparisons.is_null(row)]
    assert nulls and all(row["verdict"] != "effect" for row in nulls)  # no baseline against itself is an effect
    assert {row["reference"] for row in nulls} >= {"standard"} and len({row["reference"] for row in nulls}) == 2


def test_the_machine_check_table_on_the_study_page_is_generated_from_the_committed_results():
    """The check run after the study (its standard baseline retrained on the CPU that ran the other arms): the page's
    table is what the committed records give, the retrained baseline's nulls come first and none is an effect."""
    script = study_script()
    found = re.search(r"<!-- machine check table: begin[^\n]*-->\n(.*?)<!-- machine check table: end -->",
                      REDONE_PAGE.read_text(), re.S)
    assert found, f"{REDONE_PAGE.name} lost its machine check table markers"
    table = script.machine_check_table()
    assert found.group(1) == table, f"{REDONE_PAGE.name}'s machine check table differs from the committed results; " \
        "run python experiments/fashion_mnist.py --machine-check-table and paste its output between the markers"
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    nulls = [row for row in rows if row[0].startswith("| standard, Intel Xeon seeds") and " vs " in row[0]]
    assert len(nulls) == 5 and rows[:5] == nulls and all(row[6] != "**effect**" for row in nulls)


def test_the_machine_check_table_without_its_records_exits_2_saying_where_it_looked(tmp_path, monkeypatch, capsys):
    script = study_script()
    monkeypatch.setattr(script, "MACHINE_CHECK", str(tmp_path / "machine-check"))
    with pytest.raises(SystemExit) as stopped:
        script.main(["--machine-check-table"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "no machine-check results in" in error and "machine check" in error
