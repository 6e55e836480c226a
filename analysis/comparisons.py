"""A study's arms compared seed by seed with their references (``ModelSpec.reference``: the standard model trained
the same way), and each reference with itself on disjoint seed sets: the null every table carries."""
import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from analysis import inference
from analysis.arms import group_arms
from common.io import atomic_write_text
from data.registry import get_dataset
from sparsity.methods import BASELINE, get_method

STATISTICS = ("eps_star_correct", "eps_star_all", "clean_acc", "robust_acc", "train_loss")  # the first: primary
CSV_NAME = "comparisons.csv"
CSV_COLUMNS = ("arm", "method", "layer", "strength", "training", "reference", "seeds", "n_seeds", "baseline_seeds",
               "n_baseline_seeds", "statistic", "arm_mean", "baseline_mean", "effect", "ci_low", "ci_high", "p",
               "p_holm", "margin", "p_tost", "p_tost_holm", "verdict")


@dataclass(frozen=True)
class StudyResults:
    """A study's arms (``analysis.arms``, in table order) and every comparison row."""

    arms: list
    rows: list

    @classmethod
    def of(cls, records, statistics=STATISTICS, margins=inference.MARGINS):
        arms = group_arms(records)
        return cls(arms, comparisons(arms, statistics, margins=margins))

    @property
    def dataset(self):
        return get_dataset(self.arms[0].spec.dataset)

    def arm(self, spec):
        return next((arm for arm in self.arms if arm.spec == spec), None)


def null_splits(seeds):
    """Disjoint halves of the baseline's seeds: the first half of every rotation of the seed order (3 seeds:
    0 | 1, 2, then 1 | 2, 0, then 2 | 0, 1), mirrors dropped."""
    seeds, half, splits = tuple(seeds), len(seeds) // 2, []
    for shift in range(len(seeds)):
        rotated = seeds[shift:] + seeds[:shift]
        split = (tuple(sorted(rotated[:half])), tuple(sorted(rotated[half:])))
        if half and split not in splits and split[::-1] not in splits:
            splits.append(split)
    return splits


def _usable(values):
    return len(values) > 0 and all(v is not None and math.isfinite(v) for v in values)


def _compare(arm, base, statistic, label, margins):
    spec = arm.spec
    row = {"arm": label, "method": spec.method, "layer": spec.layer,
           "strength": None if spec.is_baseline else spec.strength, "training": spec.training,
           "reference": arm_label(base),
           "seeds": " ".join(map(str, arm.seeds)), "n_seeds": len(arm.seeds),
           "baseline_seeds": " ".join(map(str, base.seeds)), "n_baseline_seeds": len(base.seeds),
           "statistic": statistic}
    mine, theirs = arm.values[statistic], base.values[statistic]
    if not (_usable(mine) and _usable(theirs)):  # not measured, or a censored median: no difference to take
        nan = float("nan")
        return {**row, "arm_mean": None, "baseline_mean": None, "effect": nan, "ci_low": nan, "ci_high": nan,
                "p": nan, "p_tost": nan, "margin": None, "n_arm": len(mine), "n_base": len(theirs)}
    margin = float(inference.margin_of(statistic, np.array(theirs), margins))
    result = inference.compare(np.array(mine), np.array(theirs), margin)
    return {**row, "arm_mean": float(np.mean(mine)), "baseline_mean": float(np.mean(theirs)), "margin": margin,
            **{key: float(value) if key not in ("n_arm", "n_base") else value for key, value in result.items()}}


def arm_label(arm):
    spec = arm.spec
    name = (BASELINE if spec.is_baseline
            else f"{spec.method} {spec.layer} {get_method(spec.method).strength_text(spec.strength)}")
    return name if spec.adv is None else f"{name} + {spec.adv.upper()}-AT eps={spec.adv_eps:g}"


def comparisons(arms, statistics=STATISTICS, pairs=None, margins=inference.MARGINS):
    """Every row of ``comparisons.csv``: per statistic, each reference's nulls (its own Holm family), then every arm
    against its reference (Holm over all arms). ``pairs``: the ``(arm, reference)`` pairs (default: by spec)."""
    by_spec = {arm.spec: arm for arm in arms}
    compared = pairs or [(arm, by_spec[arm.spec.reference]) for arm in arms if arm.spec.reference in by_spec]
    references = [arm for arm in arms if any(arm is reference for _, reference in compared)]
    references.sort(key=lambda arm: arm.spec.adv is not None)  # the standard baseline first
    rows = []
    for statistic in statistics:
        nulls = {arm_label(reference): inference.judge([
            _compare(reference.subset(a), reference.subset(b), statistic,
                     f"{arm_label(reference)} seeds {', '.join(map(str, a))} vs {', '.join(map(str, b))}", margins)
            for a, b in null_splits(reference.seeds)]) for reference in references}
        judged = inference.judge([_compare(arm, reference, statistic, arm_label(arm), margins)
                                  for arm, reference in compared])
        rows += [row for family in nulls.values() for row in family]
        rows += [inference.guarded_by_null([row], nulls[row["reference"]])[0] for row in judged]
    return rows


def is_null(row):
    """Whether a ``comparisons`` row compares a reference with itself (disjoint seed sets of one arm)."""
    return row["arm"].startswith(f"{row['reference']} seeds ")


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def csv_text(rows):
    """``comparisons.csv``; an empty cell is not defined (one seed a side, no spread, or not measured)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return buffer.getvalue()


def write_csv(folder, rows):
    path = folder / CSV_NAME
    atomic_write_text(path, csv_text(rows), location="results_dir")
    return path
