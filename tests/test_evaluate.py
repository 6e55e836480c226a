"""Evaluation metrics, the per-model evaluation object, sanity checks and the store's files (summary.csv, malformed
JSON)."""
import csv
import json
import warnings
from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from attacks import PGD
from common.errors import FileProblem
from evaluation.checks import CompletedRun, check_black_box_not_stronger
from evaluation.config import EvalConfig
from evaluation.metrics import attack_metrics, make_targets, run_attack
from evaluation.model import ModelEvaluation
from models.spec import ModelSpec
from records.parts import Check, CheckpointInfo, WorstCase
from records.record import ResultRecord, read_record, write_record
from records.store import ResultStore
from records.summary import format_summary_table
from vis_fixture import attack_entry, baseline, result_record, spec

DEVICE = torch.device("cpu")


class ChannelMeans(nn.Module):
    """Predicts the brightest colour channel: smooth, exact, and flipped by moving channel means."""

    def forward(self, x):
        return 20 * x.mean(dim=(2, 3))


def channel_images(y, margin=0.3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand((len(y), 3, 4, 4), generator=generator) * 0.4 + 0.2
    x[torch.arange(len(y)), y] += margin
    return x


def test_targets_are_never_the_true_label_and_reproducible():
    y = torch.arange(10).repeat(50)
    targets = make_targets(y, 10, seed=3)
    assert (targets != y).all() and targets.min() >= 0 and targets.max() <= 9
    assert torch.equal(targets, make_targets(y, 10, seed=3))
    assert len(torch.unique((targets - y) % 10)) == 9  # every shift 1..9 occurs


def test_summary_numbers_use_the_stated_denominators():
    y = torch.tensor([0, 1, 2, 0, 1])
    outcome = {
        "clean_pred": torch.tensor([0, 1, 2, 0, 2]),  # the last one starts misclassified
        "adv_pred": torch.tensor([1, 1, 0, 0, 2]),
        "queries": torch.tensor([10, 500, 30, 500, 1]),
    }
    outcome["success"] = outcome["adv_pred"] != y
    metrics = attack_metrics(outcome, y, outcome["clean_pred"], targeted=False)
    assert (metrics["n"], metrics["n_correct"], metrics["n_success"]) == (5, 4, 3)
    assert metrics["success_rate_all"] == pytest.approx(3 / 5)
    assert metrics["success_rate_correct"] == pytest.approx(2 / 4)
    assert metrics["robust_acc"] == pytest.approx(2 / 5)
    assert metrics["median_queries"] == 10 and metrics["mean_queries"] == pytest.approx(41 / 3)
    assert metrics["median_queries_all"] == 30 and metrics["mean_queries_all"] == pytest.approx(1041 / 5)
    assert metrics["median_queries_correct"] == 20  # mean of the two middle values
    assert "n_correct" in metrics["denominators"] and "over all n" in metrics["denominators"]


def metrics_of(attack, x, y, targets=None):
    outcome = run_attack(attack, x, y, targets, batch_size=4)
    return attack_metrics(outcome, y, attack.model(x).argmax(1), targeted=targets is not None)


def test_pgd_metrics_on_a_model_with_a_known_margin():
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    x = channel_images(y)
    y_wrong = y.clone()
    y_wrong[0] = 1  # labelled wrong: initially misclassified, a success from the start
    strong = metrics_of(PGD(ChannelMeans(), eps=0.3, alpha=0.05, steps=10, seed=0), x, y_wrong)
    assert strong["success_rate_all"] == 1.0 and strong["robust_acc"] == 0.0 and strong["n_correct"] == 5
    none = metrics_of(PGD(ChannelMeans(), eps=0.0, seed=0), x, y_wrong)
    assert none["success_rate_all"] == pytest.approx(1 / 6) and none["success_rate_correct"] == 0.0
    hit = metrics_of(PGD(ChannelMeans(), eps=0.3, alpha=0.05, steps=10, seed=0), x, y, targets=(y + 1) % 3)
    assert hit["targeted"] and hit["success_rate_all"] == 1.0


def test_evaluate_model_reports_every_attack_check_and_timing(tmp_path):
    y = torch.arange(3).repeat(4)
    x = channel_images(y)
    config = EvalConfig().with_options(
        attacks=("pgd", "nes"), steps=5, query_n=6, nes_steps=2, nes_samples=4, check_n=6,
        batch_size=5, black_box_batch_size=4, fab_steps=5, fab_restarts=1, minimal_targets=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a robust, honest model must pass every check
        report = ModelEvaluation(ChannelMeans(), ModelSpec.baseline_of(0), (x, y), config).run()
    assert report.clean_acc == 1.0 and report.n_test == 12
    assert list(report.attacks) == ["pgd", "nes_untargeted_m0", "nes_untargeted_m0.9", "nes_targeted_m0",
                                    "nes_targeted_m0.9"]
    assert report.attacks["pgd"].n == 12 and report.attacks["nes_targeted_m0.9"].n == 6
    assert report.attacks["nes_untargeted_m0"].queries.max_queries == 2 + 2 * (2 * 4 + 1)
    assert report.attacks["nes_untargeted_m0"].threat_model == "black-box"
    statuses = {check.name: check.status for check in report.checks}
    assert statuses == {"pgd_eps1_success": "passed", "robust_acc_monotone_in_eps": "passed",
                        "black_box_not_stronger_than_white_box": "passed", "white_box_attacks_agree": "passed",
                        "zero_input_gradients": "passed", "minimal_perturbation_methods_agree": "passed",
                        "eps_star_matches_autoattack": "not_run"}  # every eps* is censored: no median to scale radii
    assert {"clean_s", "pgd_s", "nes_targeted_m0.9_s", "minimal_linf_s", "minimal_l2_s"} <= set(report.timings)
    assert report.worst_case == WorstCase(n=12, n_robust=12, robust_acc=1.0, attacks=(*report.attacks, "eps_star_linf"),
                                          all_attacks_n=6, all_attacks_robust_acc=1.0)
    assert report.eval_config["query_batch"] == 64 and report.eval_config["n_eval"] == 12
    # what eval writes of it is strict JSON and reads back as it was
    model = baseline(0)
    record = ResultRecord.of(replace(report, eval_config={**report.eval_config, "device": "cpu"}),
                             ResultStore(tmp_path).path(model), model, CheckpointInfo(
                                 "standard_seed0.pt", "0" * 64, {"recipe": {"model": "simple_cnn",
                                                                            "dataset": "cifar10"}}))
    assert write_record(record) == record
    assert read_record(record.path) == record


def test_run_attack_predicts_each_adversarial_batch_once_and_no_clean_image():
    """The evaluation's clean pass predicts every image once; an attack run predicts its examples, nothing more."""
    seen = []

    class Counted(ChannelMeans):
        def forward(self, x):
            seen.append(len(x))
            return super().forward(x)

    class Unchanged:
        name, model = "unchanged", Counted()

        def __call__(self, x, y, targeted=False):
            return x, None

    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    outcome = run_attack(Unchanged(), channel_images(y), y, batch_size=4)
    assert seen == [4, 4, 2] and not outcome["success"].any()


def test_failed_check_is_recorded_and_warned():
    everything = torch.arange(10)
    white = CompletedRun("pgd", "white-box", False, everything, torch.ones(10, dtype=torch.bool))
    black = CompletedRun("square", "black-box", False, everything, torch.zeros(10, dtype=torch.bool))
    with pytest.warns(UserWarning, match="black_box_not_stronger_than_white_box"):
        record = check_black_box_not_stronger([white, black])
    assert record.status == "failed" and "square robust_acc 0.0000 vs best white-box pgd 1.0000" in record.detail
    assert check_black_box_not_stronger([white]).status == "not_run"
    # the tolerance comes from n: 4 of 4 images apart is within chance (exact McNemar p = 1/16), 10 of 10 is not
    few = CompletedRun("square", "black-box", False, everything[:4], torch.zeros(4, dtype=torch.bool))
    assert check_black_box_not_stronger([white, few]).status == "passed"


def record(root, layer="conv3", robust=0.1, status="passed", attacks=None):
    """A record of L1 at ``layer`` (None: the baseline) in the store at ``root``."""
    model = baseline(0) if layer is None else spec("l1", layer, 0.01, 0)
    pgd = {"pgd": attack_entry("pgd", 100, 70, 70 - round(100 * robust), robust=robust)}
    return result_record(root, model, 0.7, {"conv1": 0.4, "fc3": 0.0}, attacks or pgd,
                         checks=[Check("pgd_eps1_success", status, "-")])


def test_summary_csv_lists_every_model_of_the_store_written_separately(tmp_path):
    store = ResultStore(tmp_path)
    store.put(record(tmp_path))
    path, = store.write_summary()
    first_header = path.read_text().splitlines()[0]
    nes_model = record(tmp_path, layer="conv1")
    nes_model = record(tmp_path, layer="conv1", attacks={
        **nes_model.attacks, "nes_untargeted_m0": attack_entry("nes_untargeted_m0", 10, 7, 2, robust=0.5,
                                                               median=800.0)})
    store.put(record(tmp_path, layer=None, robust=0.0, status="failed"))
    store.put(nes_model)
    path, = store.write_summary()
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["name"] for row in rows] == ["standard_seed0", "l1_conv1_s0.01_seed0", "l1_conv3_s0.01_seed0"]
    header = path.read_text().splitlines()[0]
    assert header.startswith(first_header.split(",sparsity")[0]) and "nes_untargeted_m0_median_queries" in header
    assert rows[0]["checks_failed"] == "pgd_eps1_success" and rows[0]["layer"] == ""
    assert rows[1]["nes_untargeted_m0_median_queries"] == "800.0" and rows[2]["nes_untargeted_m0_n"] == ""
    assert json.loads(store.path(baseline(0)).read_text())["schema_version"] == 5
    table = format_summary_table(store.records())
    assert "standard_seed0" in table and "FAILED: pgd_eps1_success" in table


@pytest.mark.parametrize("content, problem", [
    ("{not json", "malformed JSON"),
    ('{"format": "sparsity-robustness/result", "schema_version": 5, "checkpoint": [1, 2]}', "checkpoint"),
])
def test_malformed_result_json_of_ours_is_a_file_problem_naming_the_file(tmp_path, content, problem):
    store = ResultStore(tmp_path)
    store.put(record(tmp_path, layer=None))
    broken = store.path(spec("dropout", "conv2", 0.3, 0))
    broken.write_text(content)
    with pytest.raises(FileProblem, match="dropout_conv2_s0.3_seed0.json") as error:
        store.write_summary()
    assert problem in str(error.value)


def test_foreign_json_in_a_store_is_skipped_with_a_warning(tmp_path):
    store = ResultStore(tmp_path)
    written = store.put(record(tmp_path))
    (written.path.parent / "notes.json").write_text('{"todo": "rerun conv1"}')
    (written.path.parent / "list.json").write_text("[1, 2]")
    with pytest.warns(UserWarning, match="list.json, .*notes.json"):
        records = store.records()
    assert [r.spec.name for r in records] == ["l1_conv3_s0.01_seed0"]
