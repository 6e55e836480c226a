"""The per-layer study's declared design (studies/per_layer.py, issue 43): its arms, seeds, image sets and inference
are fixed in the file before anything runs; L1's strengths come from calibration models outside the design."""
import math
from dataclasses import replace

import pytest

from analysis.comparisons import null_splits
from analysis.inference import detectable_effect
from planner.plan import make_plan
from planner.study_cli import design_text
from studies import per_layer


def full_design():
    """The design as it runs once the calibration has filled L1 (the file's L1 is empty until then)."""
    strengths = dict.fromkeys(per_layer.LAYERS, 1.0)
    saved = dict(per_layer.L1)
    per_layer.L1.update(strengths)
    try:
        return per_layer.STUDY.with_(arms=per_layer.arms(tuple(range(10)), tuple(range(5))))
    finally:
        per_layer.L1.clear()
        per_layer.L1.update(saved)


def test_the_design_has_every_hidden_layer_for_both_methods_the_control_and_a_ten_seed_baseline():
    study = full_design().check()
    specs = study.specs()
    assert len(study.arms) == 2 + 2 * 6 and len(specs) == 10 + 13 * 5 == len(set(specs))
    assert "fc3" not in per_layer.LAYERS  # the logits: no ReLU, left out with the reason in the file
    baseline, control, *sparse = study.arms
    assert baseline.seeds == tuple(range(10)) and all(arm.seeds == tuple(range(5)) for arm in (control, *sparse))
    assert {(arm.method, arm.layer) for arm in sparse} == {(m, layer) for m in ("l1", "dropout")
                                                           for layer in per_layer.LAYERS}
    assert all(spec.reference is not None and spec.reference.is_baseline and spec.reference.adv is None
               for spec in specs if spec.seed < 5 and spec != baseline.spec(spec.seed, "fashion-mnist"))
    # the baseline's nulls are 5 against 5, so they can fail: the smallest exact two-sided p is 2 / C(10, 5)
    assert all(len(a) == len(b) == 5 for a, b in null_splits(baseline.seeds))
    assert 2 / math.comb(10, 5) < 0.01


def test_one_image_set_for_every_model_and_the_original_measures_at_a_declared_informative_eps(tmp_path):
    study = full_design()
    protocol = study.setup(tmp_path).protocol
    assert protocol.eps == 0.02 and set(protocol.eps_sweep) == {0.02, 0.1}
    assert {"pgd", "apgd", "autoattack", "square", "nes"} <= set(protocol.attacks)
    assert protocol.n_eval == 100 and protocol.query_n <= protocol.n_eval and protocol.audit_n <= protocol.n_eval
    # eps* and AutoAttack on the same first 100 images for every model; the query subset is drawn with the seed, so
    # each arm's seed-s model and the baseline's seed-s model attack the same images
    setup = study.setup(tmp_path)
    assert all(replace(setup.protocol_for(spec), seed=0) == replace(protocol, seed=0) for spec in study.specs())


def test_the_design_prints_its_detectable_effect_for_five_seeds_against_ten():
    text = design_text(full_design())
    assert "14 arms, 75 models" in text and "5 seeds against 10" in text
    assert f"{detectable_effect(5, reference_seeds=10):.1f} seed SDs for one comparison" in text
    assert detectable_effect(5, reference_seeds=10) < detectable_effect(5)  # ten baseline seeds buy power


def test_l1_strength_is_read_off_the_calibration_log_linearly_at_the_declared_share_of_zeros():
    points = [(0.1, 0.80), (0.5, 0.90), (2.5, 0.99)]
    chosen = per_layer.chosen_strength(points)
    share = (per_layer.TARGET_ZEROS - 0.90) / (0.99 - 0.90)
    assert 0.5 < chosen < 2.5 and chosen == pytest.approx(math.exp(math.log(0.5) + share * math.log(5)))
    assert per_layer.chosen_strength([(0.1, 0.5), (0.5, 0.6)]) is None  # not bracketed: no strength is made up


def test_the_calibration_trains_on_a_seed_outside_the_design_and_evaluates_nothing(tmp_path, monkeypatch):
    calibration = per_layer.CALIBRATION.with_(models=str(tmp_path / "models"), store=str(tmp_path / "results"))
    monkeypatch.setattr(per_layer, "CALIBRATION", calibration)
    assert per_layer.CALIBRATION_SEED not in {spec.seed for spec in full_design().specs()}
    plan = make_plan(calibration.specs(), calibration.setup(tmp_path), evaluate=calibration.evaluate)
    assert len(plan.tasks) == 1 + 3 * 6 and {task.kind for task in plan.tasks} == {"train"}
    assert "| conv1 | - | - | - | - | - |" in per_layer.calibration_table()  # nothing trained: dashes, no guess
    assert design_text(calibration).endswith("no comparison: training only or one seed an arm (no detectable effect)")


def test_the_per_layer_figure_draws_each_seed_at_its_layer_beside_the_baselines_band_and_the_control(tmp_path):
    from analysis.comparisons import StudyResults
    from records.store import ResultStore
    from vis.per_layer_figure import per_layer_figure, plot_per_layer
    from vis_fixture import attack_entry, baseline, minimal_from, spec, write_result

    def record(model, pgd_fooled, shift):
        attacks = {"pgd": attack_entry("pgd", 20, 20, pgd_fooled),
                   "nes_untargeted_m0.9": attack_entry("nes_untargeted_m0.9", 10, 10, 5, median=400)}
        write_result(tmp_path, model, 0.9, {"conv1": 0.5}, attacks,
                     minimal={"linf": minimal_from([0.0] + [0.02 + shift] * 9, 0.4)})

    for seed in range(4):
        record(baseline(seed), 20, 0.001 * seed)
    for seed in range(2):
        record(spec("l1", "conv2", 1.0, seed), 10, 0.01)
        record(spec("dropout", "conv1", 0.3, seed), 20, 0.0)
        record(spec("standard", None, 0.0, seed, "fgsm-rs", 0.1), 5, 0.08)
    results = StudyResults.of(ResultStore(tmp_path).records("cifar10"))
    figure = per_layer_figure(results, ("conv1", "conv2"))
    eps_l1, eps_dropout, pgd_l1 = figure.axes[0], figure.axes[1], figure.axes[2]
    factor = results.dataset.scale_eps(1.0)
    points = [line for line in eps_l1.lines if line.get_marker() == "o"]
    assert [round(float(line.get_xdata().mean())) for line in points] == [1, 2]  # L1 at conv2, then the control
    assert points[0].get_ydata() / factor == pytest.approx([0.03, 0.03])  # one point per seed, its median eps*
    band = eps_l1.patches[0]  # the baseline's seeds, min to max
    assert band.get_y() / factor == pytest.approx(0.02) and band.get_height() / factor == pytest.approx(0.003)
    assert [round(float(line.get_xdata().mean())) for line in eps_dropout.lines if line.get_marker() == "o"] == [0, 2]
    assert [line.get_ydata() for line in pgd_l1.lines if line.get_marker() == "o"][0] == pytest.approx([50, 50])
    assert plot_per_layer(results, ("conv1", "conv2"), tmp_path / "per_layer")[0].read_bytes().startswith(b"\x89PNG")
