"""The results file's records: one per run, one per strength (over seeds), and the unregularised baseline.

Strict JSON: a flip not found within the search limit is ``null`` with an explicit censoring field, never
Infinity. Statistics over seeds use only the runs that converged (reached the fit target); the others are
counted, not averaged. With censored seeds only the median is given (``common.stats``: it stays valid while
fewer than half are censored), never a mean over the seeds that did flip.
"""
import itertools
import math
from collections import Counter

from common import stats

SCHEMA_VERSION = 2
# (per-run key, what it measures); per-point measures are summarised per run by their median over points
FLIP_MEASURES = (
    ("flip_margin_set", "margin set (original)"),
    ("flip_theory_median", "theory direction, median point"),
    ("flip_attack_median", "l2 PGD, median point"),
)
# the per-point measures the theory is about, compared with its scale sqrt(d/m)
BASELINE_MEASURES = (("flip_theory_median", "theory direction"), ("flip_attack_median", "l2 PGD"))
TRAINING_KEYS = ("steps", "final_loss", "train_acc", "activation_sparsity", "dead_units")


def _json_number(value):
    """A finite float, or None for inf (censored) or no value: strict JSON has no Infinity."""
    return float(value) if value is not None and math.isfinite(value) else None


def run_record(strength, seed, outcome, statistics, measures, r):
    """The record of run ``r`` of a ``TrainOutcome``: identity, how training ended, the trained network's
    statistics, and the three flip measures (l2 norms); a per-point measure is summarised by its median
    over points, censored when a middle value is."""
    record = {
        "strength": strength, "seed": seed, "steps": outcome.steps[r], "stop_reason": outcome.stop_reasons[r],
        "converged": outcome.converged[r],
        **{key: int(value[r]) if key == "dead_units" else float(value[r]) for key, value in statistics.items()},
        "margin_set_size": int(measures.margin_set_size[r]),
    }
    margin_set = float(measures.margin_set[r])
    record["flip_margin_set"] = _json_number(margin_set)
    record["flip_margin_set_censored"] = math.isinf(margin_set)
    for name, per_point in (("theory", measures.theory[r].tolist()), ("attack", measures.attack[r].tolist())):
        median = stats.median(per_point)
        record[f"flip_{name}_median"] = _json_number(median)
        record[f"flip_{name}_median_censored"] = math.isinf(median)
        record[f"flip_{name}_censored_points"] = sum(map(math.isinf, per_point))
        record[f"flip_{name}_per_point"] = [_json_number(c) for c in per_point]
    return record


def seed_statistics(values):
    """Over seeds, ``values`` with None = censored: mean/std only if none is censored, the median
    (None if itself censored), and the counts."""
    censored = values.count(None)
    finite = [value for value in values if value is not None]
    return {
        "n": len(values), "censored": censored,
        "mean": stats.mean(finite) if not censored else None,
        "std": stats.sample_std(finite) if not censored else None,
        "median": _json_number(stats.median([math.inf if value is None else value for value in values])),
    }


def strength_records(runs):
    """One record per strength, in increasing strength: convergence counts and statistics over the
    converged seeds."""
    records = []
    ordered = sorted(runs, key=lambda run: (run["strength"], run["seed"]))
    for strength, group in itertools.groupby(ordered, key=lambda run: run["strength"]):
        group = list(group)
        converged = [run for run in group if run["converged"]]
        record = {"strength": strength, "runs": len(group), "converged": len(converged),
                  "stop_reasons": dict(Counter(run["stop_reason"] for run in group))}
        for key in (*TRAINING_KEYS, *(key for key, _ in FLIP_MEASURES)):
            record[key] = seed_statistics([run[key] for run in converged])
        records.append(record)
    return records


def baseline_record(runs, theory_scale):
    """The unregularised runs' per-point flips (median point) over the theory's scale sqrt(d/m), per seed
    and over seeds (converged runs only)."""
    baseline = [run for run in runs if run["strength"] == 0 and run["converged"]]
    record = {"theory_scale": theory_scale, "seeds": [run["seed"] for run in baseline]}
    for key, _ in BASELINE_MEASURES:
        ratios = [None if run[key] is None else run[key] / theory_scale for run in baseline]
        record[f"{key}_over_theory_scale"] = {"per_seed": ratios, **seed_statistics(ratios)}
    return record


def results_document(config, records, timings):
    d, m = config.d, config.m
    theory_scale = math.sqrt(d / m)
    return {
        "schema_version": SCHEMA_VERSION,
        "config": config.to_dict(),
        "scales": {"sqrt_d": math.sqrt(d), "theory_scale": theory_scale,
                   "flip_search_limit": config.search_limit * math.sqrt(d)},
        "baseline": baseline_record(records, theory_scale),
        "strengths": strength_records(records),
        "runs": records,
        "timings": timings,
    }
