"""The results file's records: per run, per strength (over the converged seeds; the others counted) and the baseline.
A censored flip is ``null`` (strict JSON); then only the median over seeds is given, never a mean of the flipped."""
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
    """Run ``r``'s record: how training ended, its statistics and the flip measures (per point: their median)."""
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
    """Over seeds (None: censored): mean/std only if none is censored, the median (None: censored), counts."""
    censored = values.count(None)
    finite = [value for value in values if value is not None]
    return {
        "n": len(values), "censored": censored,
        "mean": stats.mean(finite) if not censored else None,
        "std": stats.sample_std(finite) if not censored else None,
        "median": _json_number(stats.median([math.inf if value is None else value for value in values])),
    }


def strength_records(runs):
    """Per strength, increasing: convergence counts and statistics over the converged seeds."""
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
    """The converged unregularised runs' median-point flips over sqrt(d/m), per seed and over seeds."""
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
