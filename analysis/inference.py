"""Seed-level inference: the trained model (seed) is the unit, never the image.

An image's eps* correlates 0.8-0.9 across seeds, so pooling images measures these networks, not a recipe. Each seed
gives one number; arms differ in the mean of those, tested by an exact permutation test (3 vs 3 seeds: p >= 0.1,
rightly never an effect) with Welch's interval (a bootstrap over 3-8 seeds has too few resamples to keep coverage),
Holm over a study's arms. *effect*: Holm p < 0.05 and the interval excludes 0; *no effect* only by TOST against a
margin fixed before the results (``MARGINS``); else *inconclusive*. Where a baseline against itself is an effect,
its arms are *null failed* (``guarded_by_null``). tests/test_inference.py measures error rate and power.
"""
import warnings

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.power import TTestIndPower

ALPHA = 0.05
CONFIDENCE = 0.95
PERMUTATIONS = 100_000  # exact test up to this many arrangements (8 vs 8 seeds: 12,870)
EFFECT, NO_EFFECT, INCONCLUSIVE, NULL_FAILED = "effect", "no effect", "inconclusive", "null failed"
# Equivalence margins, fixed before any result was read: "relative" a share of the baseline's mean, "absolute" in
# the statistic's own unit.
MARGINS = {"eps_star_correct": ("relative", 0.10), "eps_star_all": ("relative", 0.10),
           "clean_acc": ("absolute", 0.01), "robust_acc": ("absolute", 0.01), "train_loss": ("relative", 0.10)}


def margin_of(statistic, base_values, margins=MARGINS):
    """The equivalence margin of ``statistic`` given the baseline's per-seed values (last axis)."""
    kind, size = margins[statistic]
    return size * np.mean(base_values, axis=-1) if kind == "relative" else np.full(np.shape(base_values)[:-1], size)


def _mean_difference(x, y, axis):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def compare(arm, base, margin, seed=0):
    """Seed-level comparison of per-seed values (last axis; leading batch axes shared): effect, ci_low, ci_high,
    p, p_tost, n_arm, n_base (nan where a quantity needs two seeds a side, or every seed has the same value)."""
    arm, base = np.asarray(arm, dtype=float), np.asarray(base, dtype=float)
    n_arm, n_base = arm.shape[-1], base.shape[-1]
    effect = _mean_difference(arm, base, -1)
    nan = np.full(np.shape(effect), np.nan)
    p, low, high, p_tost = nan, nan.copy(), nan.copy(), nan.copy()
    if min(n_arm, n_base) > 1:  # one seed has no spread to test against: no p, no interval (and no verdict)
        p = stats.permutation_test((arm, base), _mean_difference, permutation_type="independent", vectorized=True,
                                   n_resamples=PERMUTATIONS, axis=-1, rng=np.random.default_rng(seed)).pvalue
        margin = np.asarray(margin, dtype=float)[..., None]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # no spread at all (every seed 0% robust): nan
            welch = stats.ttest_ind(arm, base, axis=-1, equal_var=False)
            low, high = welch.confidence_interval(CONFIDENCE)
            above = stats.ttest_ind(arm + margin, base, axis=-1, equal_var=False, alternative="greater").pvalue
            below = stats.ttest_ind(arm - margin, base, axis=-1, equal_var=False, alternative="less").pvalue
            p_tost = np.maximum(above, below)
        # no spread on either side (every seed 0% robust): Welch's t is 0/0 or x/0, neither an interval nor an
        # equivalence; the permutation p stays (1: nothing differs)
        flat = (np.var(arm, axis=-1) == 0) & (np.var(base, axis=-1) == 0)
        low, high, p_tost = (np.where(flat, np.nan, value) for value in (low, high, p_tost))
    return {"effect": effect, "ci_low": np.asarray(low), "ci_high": np.asarray(high),
            "p": np.asarray(p), "p_tost": np.asarray(p_tost), "n_arm": n_arm, "n_base": n_base}


def holm(pvalues, axis=-1):
    """Holm-adjusted p-values along ``axis`` (the arms of one study); nan (no test) stays nan and is not counted."""
    pvalues = np.moveaxis(np.asarray(pvalues, dtype=float), axis, -1)
    adjusted = np.full(pvalues.shape, np.nan)
    for index in np.ndindex(pvalues.shape[:-1]):
        row = pvalues[index]
        tested = ~np.isnan(row)
        if tested.sum() == 1:  # a family of one is its own adjustment (and multipletests runs gc.collect per call,
            adjusted[index + (tested,)] = row[tested]  # seconds over the simulated studies' thousands of families)
        elif tested.any():
            adjusted[index + (tested,)] = multipletests(row[tested], alpha=ALPHA, method="holm")[1]
    return np.moveaxis(adjusted, -1, axis)


def verdict(p_holm, ci_low, ci_high, p_tost_holm, n_arm, n_base):
    """*effect*, *no effect* or *inconclusive* per comparison (arrays broadcast); see the module's docstring."""
    p_holm, ci_low, ci_high, p_tost_holm = map(np.asarray, (p_holm, ci_low, ci_high, p_tost_holm))
    seeds = np.minimum(n_arm, n_base) > 1
    excludes_zero = (ci_low > 0) | (ci_high < 0)
    effect = seeds & (p_holm < ALPHA) & excludes_zero
    equivalent = seeds & ~effect & (p_tost_holm < ALPHA)
    return np.where(effect, EFFECT, np.where(equivalent, NO_EFFECT, INCONCLUSIVE))


def judge(comparisons):
    """``comparisons`` (one study's arms, ``compare`` results on scalars) with p_holm, p_tost_holm and verdict."""
    p_holm = holm([c["p"] for c in comparisons]) if comparisons else []
    p_tost_holm = holm([c["p_tost"] for c in comparisons]) if comparisons else []
    return [{**c, "p_holm": float(adjusted), "p_tost_holm": float(tost),
             "verdict": str(verdict(adjusted, c["ci_low"], c["ci_high"], tost, c["n_arm"], c["n_base"]))}
            for c, adjusted, tost in zip(comparisons, p_holm, p_tost_holm)]


def guarded_by_null(judged, nulls):
    """``judged`` (arms against one baseline) with every verdict but *inconclusive* made *null failed* where one of
    ``nulls`` (that baseline against itself) is an effect."""
    if not any(row["verdict"] == EFFECT for row in nulls):
        return judged
    return [{**row, "verdict": NULL_FAILED} if row["verdict"] != INCONCLUSIVE else row for row in judged]


def detectable_effect(n_seeds, n_arms=1, power=0.8, reference_seeds=None):
    """The smallest difference of seed means, in units of the seed SD, that ``n_seeds`` in the arm against
    ``reference_seeds`` (default: as many) detect with ``power`` (two-sided two-sample t-test at ALPHA / n_arms:
    Holm's first step when one of ``n_arms`` arms moves)."""
    ratio = (reference_seeds or n_seeds) / n_seeds
    return float(TTestIndPower().solve_power(effect_size=None, nobs1=n_seeds, alpha=ALPHA / n_arms, power=power,
                                             ratio=ratio))


def seed_interval(values):
    """``(low, high)``: the 95% t interval of the mean of per-seed values (a handful of seeds: a percentile bootstrap
    over them has too few distinct resamples), clipped to [0, 1] as the values are proportions; (nan, nan) below two
    seeds, the value itself where every seed agrees (see ``zero_count_bound`` for counts of zero)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    low, high = stats.t.interval(CONFIDENCE, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    return max(float(low), 0.0), min(float(high), 1.0)


def zero_count_bound(n):
    """The one-sided 95% upper bound of a rate seen 0 times in ``n`` trials (Clopper-Pearson: 1 - 0.05^(1/n))."""
    return float(proportion_confint(0, n, alpha=2 * (1 - CONFIDENCE), method="beta")[1])
