"""A study's arms compared with its baseline seed by seed (``common.inference``), and baseline against baseline.

Per seed (one trained model, one result record): its clean accuracy (all test images), its AutoAttack robust accuracy
at the study's eps (on the record's attacked images; an upper bound set by AutoAttack standard), its median eps* (L-inf)
over the images it classifies correctly (the primary statistic: eps* is 0 for a misclassified image, so an all-image
median mixes clean error into robustness and compares arms of different accuracy at different quantiles), and the
all-image median as a labelled secondary statistic. An arm is a (method, layer, strength, adversarial training) with
its learned seeds; it is compared with the baseline's seeds on each statistic, Holm over all arms of the study per
statistic. The baseline of an arm is the standard model trained the same way: the adversarially trained baseline (the
positive control) is compared with the standard baseline, and a sparse arm on top of adversarial training with the
adversarially trained baseline (does sparsity add robustness where robustness exists?). The baseline
is also compared with itself (disjoint seed sets, the same code) in rows of their own Holm family: the null every
table carries. ``comparisons.csv`` holds every row; the study pages (docs/studies/) print them.
"""
import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from common import inference, stats
from common.io import atomic_write_text
from evaluation.minimal import CLEAN
from evaluation.records import load_records, record_order
from sparsity.methods import BASELINE, get_method
from sparsity.variants import TrainedAs

NORM = "linf"
ROBUST_ATTACK = "autoattack"
# The first is the primary one. train_loss, the model's final training loss (the loss it was trained on: adversarial
# for adversarial training), says how far an arm's fit is from its baseline's: a regulariser that fits less can look
# more robust for that reason alone.
STATISTICS = ("eps_star_correct", "eps_star_all", "clean_acc", "robust_acc", "train_loss")
CSV_NAME = "comparisons.csv"
CSV_COLUMNS = ("arm", "method", "layer", "strength", "training", "reference", "seeds", "n_seeds", "baseline_seeds", "n_baseline_seeds",
               "statistic", "arm_mean", "baseline_mean", "effect", "ci_low", "ci_high", "p", "p_holm", "margin",
               "p_tost", "p_tost_holm", "verdict")


@dataclass(frozen=True)
class Arm(TrainedAs):
    """One (method, layer, strength, adversarial training) of a study with the per-seed values of its learned
    seeds."""

    method: str
    layer: str | None
    strength: float
    seeds: tuple
    values: dict  # statistic -> tuple of per-seed values (seed order); None where a seed lacks it
    not_learned_seeds: tuple
    adv: str | None = None  # adversarial training (training.adversarial), None: standard training
    adv_eps: float | None = None

    def subset(self, seeds):
        keep = [self.seeds.index(seed) for seed in seeds]
        return Arm(self.method, self.layer, self.strength, tuple(seeds),
                   {key: tuple(values[i] for i in keep) for key, values in self.values.items()}, (), self.adv,
                   self.adv_eps)


def median_eps_star(entry, correct_only):
    """One seed's median eps* (inf where censored) over its images, or its correctly classified ones."""
    values = [math.inf if value is None else value for value, method in zip(entry.eps_star, entry.method)
              if not (correct_only and method == CLEAN)]
    return stats.median(values)  # inf where the median is censored (past the search limit)


def seed_values(record):
    """``{statistic: value}`` of one record (None where it did not measure it)."""
    entry = record.minimal.get(NORM)
    attack = record.attacks.get(ROBUST_ATTACK)
    return {"eps_star_correct": median_eps_star(entry, True) if entry else None,
            "eps_star_all": median_eps_star(entry, False) if entry else None,
            "clean_acc": record.clean_acc,
            "robust_acc": attack.robust_acc if attack and attack.n else None,
            "train_loss": record.checkpoint.final_train_loss}


def load_arms(results_dir, dataset, methods, select=None):
    """``(baseline, [Arm])`` of the study in ``results_dir/dataset/{method}/`` (the baseline from the first
    method's folder: each holds the same copy), in table order; seeds that did not learn are left out and named.
    ``select``: a predicate on a record's variant; only the records it accepts form arms (a study's declared design:
    a model outside it, a dose-response one, never joins an arm's seeds or the Holm family)."""
    baseline, arms = None, []
    for method in methods:
        folder = results_dir / dataset / method
        if not folder.is_dir():
            continue
        records = sorted((r for r in load_records(folder, method, dataset=dataset)
                          if select is None or select(r.variant)), key=record_order)
        groups = {}
        for record in records:
            v = record.variant
            groups.setdefault((v.method, v.layer, v.strength, v.adv, v.adv_eps), []).append(record)
        for (name, layer, strength, adv, adv_eps), group in groups.items():
            learned = [r for r in group if r.learned is not False]
            values = [seed_values(r) for r in learned]
            arm = Arm(name, layer, strength, tuple(r.variant.seed for r in learned),
                      {key: tuple(v[key] for v in values) for key in STATISTICS},
                      tuple(r.variant.seed for r in group if r.learned is False), adv, adv_eps)
            if arm.is_baseline and arm.adv is None:
                baseline = baseline or arm
            elif (name, layer, strength, adv, adv_eps) not in {(a.method, a.layer, a.strength, a.adv, a.adv_eps)
                                                               for a in arms}:
                arms.append(arm)  # an adversarially trained baseline may sit in several method folders: once
    arms.sort(key=lambda a: (a.adv is not None, not a.is_baseline))  # standard training first, then the control
    return baseline, arms


def null_splits(seeds):
    """Disjoint halves of the baseline's seeds, each compared as arm against baseline: the first half of every
    rotation of the seed order (3 seeds: 0 | 1, 2, then 1 | 2, 0, then 2 | 0, 1), mirrors dropped."""
    seeds, half, splits = tuple(seeds), len(seeds) // 2, []
    for shift in range(len(seeds)):
        rotated = seeds[shift:] + seeds[:shift]
        split = (tuple(sorted(rotated[:half])), tuple(sorted(rotated[half:])))
        if half and split not in splits and split[::-1] not in splits:
            splits.append(split)
    return splits


def _usable(values):
    return len(values) > 0 and all(v is not None and math.isfinite(v) for v in values)


def _compare(arm, base, statistic, label):
    row = {"arm": label, "method": arm.method, "layer": arm.layer, "strength": None if arm.is_baseline else arm.strength,
           "training": arm.training, "reference": arm_label(base),
           "seeds": " ".join(map(str, arm.seeds)), "n_seeds": len(arm.seeds),
           "baseline_seeds": " ".join(map(str, base.seeds)), "n_baseline_seeds": len(base.seeds),
           "statistic": statistic}
    mine, theirs = arm.values[statistic], base.values[statistic]
    if not (_usable(mine) and _usable(theirs)):  # not measured, or a censored median: no difference to take
        nan = float("nan")
        return {**row, "arm_mean": None, "baseline_mean": None, "effect": nan, "ci_low": nan, "ci_high": nan,
                "p": nan, "p_tost": nan, "margin": None, "n_arm": len(mine), "n_base": len(theirs)}
    margin = float(inference.margin_of(statistic, np.array(theirs)))
    result = inference.compare(np.array(mine), np.array(theirs), margin)
    return {**row, "arm_mean": float(np.mean(mine)), "baseline_mean": float(np.mean(theirs)), "margin": margin,
            **{key: float(value) if key not in ("n_arm", "n_base") else value for key, value in result.items()}}


def arm_label(arm):
    name = BASELINE if arm.is_baseline else f"{arm.method} {arm.layer} {get_method(arm.method).strength_text(arm.strength)}"
    return name if arm.adv is None else f"{name} + {arm.adv.upper()}-AT eps={arm.adv_eps:g}"


def reference_of(arm, baseline, arms):
    """The arm's baseline: the standard model trained as it was (the adversarially trained baseline for a sparse arm
    on top of adversarial training), and the standard baseline for the adversarially trained baseline itself."""
    if arm.adv is None or arm.is_baseline:
        return baseline
    same = [a for a in arms if a.is_baseline and (a.adv, a.adv_eps) == (arm.adv, arm.adv_eps)]
    return same[0] if same else None


def comparisons(baseline, arms):
    """Every row of ``comparisons.csv``: per statistic, each reference's rows against itself (the null: the standard
    baseline's disjoint seed sets, then the adversarially trained baseline's, which the arms on top of it are
    compared with; each reference its own Holm family), then every arm against the whole of its reference (Holm over
    all arms); each row judged (``common.inference``)."""
    rows = []
    if baseline is None:  # nothing to compare with (the tables still show each arm's seeds)
        return rows
    references = [baseline, *(arm for arm in arms if arm.is_baseline and arm.adv is not None)]
    for statistic in STATISTICS:
        nulls = {arm_label(reference): inference.judge([
            _compare(reference.subset(a), reference.subset(b), statistic,
                     f"{arm_label(reference)} seeds {', '.join(map(str, a))} vs {', '.join(map(str, b))}")
            for a, b in null_splits(reference.seeds)]) for reference in references}
        judged = inference.judge([_compare(arm, reference, statistic, arm_label(arm)) for arm in arms
                                  if (reference := reference_of(arm, baseline, arms)) is not None])
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
    """``comparisons.csv``: one row per comparison and statistic; empty cells: not defined (one seed a side, no
    spread, or not measured)."""
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
