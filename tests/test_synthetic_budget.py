"""The synthetic comparison does not depend on the step budget: every run trains to the same fit, so doubling
the cap moves the headline numbers by less than their spread over seeds (here: not at all)."""
import pytest

from synthetic.config import SyntheticConfig
from synthetic.experiment import run_experiment

HEADLINES = ("dead_units", "flip_margin_set", "flip_theory_median", "flip_attack_median")
BUDGET = 1000


def sweep(steps):
    """No effect, part of the units dead, most of them dead (sum penalty at these sizes; see test_synthetic)."""
    config = SyntheticConfig.from_options("l1", d=400, m=20, width=100, penalty="sum", strengths=[0.0, 3e-9, 1e-8],
                                          seeds=[0, 1, 2], steps=steps)
    return run_experiment(config, progress=False)


@pytest.fixture(scope="module")
def budgets():
    return sweep(BUDGET), sweep(2 * BUDGET)


def test_every_run_converges_within_the_budget(budgets):
    for results in budgets:
        assert all(run["converged"] and run["steps"] < BUDGET for run in results["runs"])


def test_headline_numbers_move_less_than_their_seed_spread_when_the_budget_doubles(budgets):
    single, double = budgets
    spreads = []
    for row, doubled in zip(single["strengths"], double["strengths"]):
        for key in HEADLINES:
            ours, theirs = row[key], doubled[key]
            assert ours["censored"] == theirs["censored"] == 0
            assert abs(theirs["mean"] - ours["mean"]) <= ours["std"]
            spreads.append(ours["std"])
    assert max(spreads) > 0
    dead = [row["dead_units"]["mean"] for row in single["strengths"]]
    assert dead[0] < 5 < dead[1] < dead[2]  # the sweep crosses the transition
