"""Synthetic results: the config's validation and file names, censoring-aware records, their text, and the
scaling fit against the theory."""
import json
import math

import pytest
import torch

from common import stats
from common.errors import ConfigError
from synthetic.config import SyntheticConfig
from synthetic.measures import FlipMeasures
from synthetic.figure import plot_results
from synthetic.records import results_document, run_record, seed_statistics, strength_records
from synthetic.scaling import scaling_report, scaling_rows, sweep_exponents
from synthetic.table import statistic_text
from synthetic.trainer import TrainOutcome

INF = math.inf


def test_defaults_follow_mode_penalty_and_optimizer():
    l1 = SyntheticConfig.from_options("l1")
    assert l1.penalty == "mean" and l1.strengths[0] == 0 and l1.lr == 0.03
    original = SyntheticConfig.from_options("l1", penalty="sum", optimizer="gd")
    # the same sweep in the original's units: sum(h) over m * width = 1e5 activations
    assert [s * 1e5 for s in original.strengths] == pytest.approx(list(l1.strengths))
    assert original.lr == 0.1 and original.l1_scale == 1 and l1.l1_scale == 1 / (200 * 500)
    assert SyntheticConfig.from_options("dropout").penalty is None


@pytest.mark.parametrize("options, field", [
    ({"penalty": "sum"}, "penalty"),  # with dropout
    ({"strengths": [0.5, float("nan")]}, "strengths"),
    ({"strengths": [1.0]}, "strengths"),
    ({"seeds": [3, 3]}, "seeds"),
    ({"seeds": [-1]}, "seeds"),
    ({"width": 0}, "width"),
    ({"loss_target": 0.0}, "loss_target"),
])
def test_bad_settings_name_their_field(options, field):
    with pytest.raises(ConfigError) as error:
        SyntheticConfig.from_options("dropout", **options)
    assert error.value.field == field


def test_results_name_is_the_mode_for_the_defaults_and_unique_otherwise():
    assert SyntheticConfig.from_options("l1").results_name() == "l1"
    assert SyntheticConfig.from_options("dropout").results_name() == "dropout"
    variants = [{"d": 500}, {"m": 20}, {"width": 100}, {"penalty": "sum"}, {"optimizer": "gd"}, {"lr": 0.01},
                {"steps": 40000}, {"loss_target": 1e-5}, {"search_limit": 4.0}, {"seeds": [0, 1]},
                {"strengths": [0.0, 1e-5]}, {"strengths": [0.0, 1e-5, 2e-5]}, {"d": 500, "m": 20}]
    names = [SyntheticConfig.from_options("l1", **options).results_name() for options in variants]
    assert len(set(names)) == len(names) and "l1" not in names
    assert names[:5] == ["l1_d500", "l1_m20", "l1_width100", "l1_sum", "l1_gd"]  # gd's own lr is its default
    long_sweep = SyntheticConfig.from_options("l1", strengths=[i * 1e-6 for i in range(30)]).results_name()
    assert len(long_sweep) < 40


def _measures(margin_set, theory, attack):
    theory, attack = torch.tensor([theory]), torch.tensor([attack])
    return FlipMeasures(torch.tensor([margin_set]), torch.tensor([len(theory[0])]), theory, attack,
                        torch.zeros(1, len(theory[0]), 2))


def _record(margin_set, theory, attack, converged=True, strength=0.0, seed=0):
    statistics = {key: torch.tensor([0.0]) for key in ("final_loss", "train_acc", "activation_sparsity")}
    statistics["dead_units"] = torch.tensor([3])
    outcome = TrainOutcome(net=None, steps=[100], stop_reasons=["target" if converged else "max_steps"])
    return run_record(strength, seed, outcome, statistics, _measures(margin_set, theory, attack), 0)


def test_censored_flips_are_null_with_explicit_flags_and_strict_json():
    record = _record(INF, [1.0, INF, INF, 2.0], [0.5, 1.0, 3.0, 4.0])
    json.dumps(record, allow_nan=False)
    assert record["flip_margin_set"] is None and record["flip_margin_set_censored"]
    # the median of four points, two of them censored, is censored; the PGD one averages the middle two
    assert record["flip_theory_median"] is None and record["flip_theory_median_censored"]
    assert record["flip_theory_censored_points"] == 2 and record["flip_theory_per_point"] == [1.0, None, None, 2.0]
    assert record["flip_attack_median"] == 2.0 == stats.median([0.5, 1.0, 3.0, 4.0])
    assert not record["flip_attack_median_censored"] and record["flip_attack_censored_points"] == 0


def test_statistics_over_seeds_never_average_the_seeds_that_flipped():
    assert seed_statistics([1.0, 2.0, 4.0]) == pytest.approx(
        {"n": 3, "censored": 0, "mean": 7 / 3, "std": stats.sample_std([1.0, 2.0, 4.0]), "median": 2.0})
    some = seed_statistics([1.0, None, 2.0])
    assert some["mean"] is None and some["std"] is None and some["median"] == 2.0 and some["censored"] == 1
    most = seed_statistics([1.0, None, None])
    assert most["median"] is None and most["censored"] == 2
    assert statistic_text(seed_statistics([1.0, 2.0, 4.0])) == "2.33 ± 1.5"
    assert statistic_text(some, limit=113.1) == "2 (1/3 >= 113)"
    assert statistic_text(most, limit=113.1) == ">= 113 (2/3)"


def test_runs_that_did_not_converge_are_counted_not_averaged():
    runs = [_record(1.0, [1.0], [1.0], seed=0), _record(3.0, [3.0], [3.0], seed=1),
            _record(100.0, [100.0], [100.0], seed=2, converged=False)]
    (row,) = strength_records(runs)
    assert row["runs"] == 3 and row["converged"] == 2 and row["stop_reasons"] == {"target": 2, "max_steps": 1}
    assert row["flip_margin_set"]["mean"] == 2.0 and row["flip_margin_set"]["n"] == 2


def _document(d, m, flip):
    """A results document whose unregularised runs all flip at ``flip`` (median point)."""
    scale = math.sqrt(d / m)
    ratio = seed_statistics([flip / scale, flip / scale])
    return {"config": {"d": d, "m": m},
            "baseline": {"theory_scale": scale, "flip_theory_median_over_theory_scale": ratio,
                         "flip_attack_median_over_theory_scale": seed_statistics([None, None])}}


def test_scaling_fits_tell_sqrt_d_over_m_from_sqrt_d():
    like_theory = [_document(d, m, 1.5 * math.sqrt(d / m)) for d, m in ((200, 20), (200, 200), (1000, 200))]
    like_data_norm = [_document(d, m, 0.1 * math.sqrt(d)) for d, m in ((200, 20), (200, 200), (1000, 200))]
    for documents, in_m in ((like_theory, -0.5), (like_data_norm, 0.0)):
        found = sweep_exponents(scaling_rows(documents), "flip_theory_median")
        assert found["d"] == {200: pytest.approx(0.5)} and found["m"] == {200: pytest.approx(in_m, abs=1e-12)}
    report = scaling_report(like_theory)
    assert "1.500 ± 0" in report and "in m at d=200: -0.50" in report
    assert sweep_exponents(scaling_rows(like_theory), "flip_attack_median") == {"d": {}, "m": {}}  # censored


def test_figure_draws_censored_medians_and_is_byte_reproducible(tmp_path):
    config = SyntheticConfig.from_options("l1", d=2, m=4, width=3, strengths=[0.0, 1e-3], seeds=[0, 1, 2])
    runs = [_record(INF if seed else 2.0, [1.0, 1.5, 2.0, 2.5], [1.0] * 4, strength=strength, seed=seed)
            for strength in config.strengths for seed in config.seeds]
    document = results_document(config, runs, {})
    assert document["strengths"][0]["flip_margin_set"]["median"] is None  # 2 of 3 seeds censored
    first = plot_results(document, tmp_path / "a")
    second = plot_results(document, tmp_path / "b")
    assert [path.suffix for path in first] == [".png", ".pdf"]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second))
