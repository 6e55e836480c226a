"""A study's tables across methods, read from its result files: what the study pages (docs/studies/) show.

One results folder per method (``{results_dir}/{dataset}/{method}/``, as ``main.py --mode eval`` writes them);
the baseline is shared (each folder holds the same copy), so it is one row. The trained model (seed) is the unit:
every number is per seed or a seed-level summary, never images pooled over seeds; the comparisons with the baseline
come from ``vis.comparisons`` (seed-level tests, Holm, baseline-against-baseline rows). Nothing here is typed by
hand (``python experiments/fashion_mnist.py --tables`` prints them for the study pages and writes ``comparisons.csv``,
and ``tests/test_study_table.py`` checks that the first study's page holds exactly that).
"""
import math
from dataclasses import dataclass

from common import inference, stats
from sparsity.methods import METHODS, get_method
from vis import comparisons
from vis.eps_star import eps_text
from vis.results import load_method_results
from vis.summary_table import DASH, markdown_table, percent_text

EPS_STAR_NORM = comparisons.NORM
WORST_CASE_NOTE = "worst case over every attack run and eps*"


def load_study(results_dir, dataset, methods=None, adversarial=False, select=None):
    """``[MethodResults]`` of each method with a results folder under ``results_dir/dataset``: the models of standard
    training, or (``adversarial``) those of adversarial training, where a folder has any; ``select``: a predicate on
    a record's variant (the models it refuses are left out)."""
    folder = results_dir / dataset
    found = [load_method_results(folder, method, None, include_baseline=True, dataset=dataset,
                                 adversarial=adversarial, say_left_out=False, select=select)[1]
             for method in (methods or METHODS) if (folder / method).is_dir()]
    return [results for results in found if results.variants]


@dataclass(frozen=True)
class Study:
    """A study's merged results per method, its arms' per-seed values and every comparison row."""

    results: list  # [vis.results.MethodResults] of standard training
    adversarial: list  # [vis.results.MethodResults] of adversarial training (the positive control and arms on it)
    baseline: comparisons.Arm
    arms: list  # [comparisons.Arm], table order
    rows: list  # comparisons.comparisons(baseline, arms)

    @property
    def dataset(self):
        return self.results[0].dataset


def load_study_tables(results_dir, dataset, methods=None, select=None):
    """``Study`` of ``results_dir/dataset``; None where it has no results folder. ``select``: a predicate on a
    record's variant, the study's declared design: the folders may hold other models (a dose-response shares them),
    which then enter no table, arm or Holm family."""
    methods = [m for m in (methods or METHODS) if (results_dir / dataset / m).is_dir()]
    results = load_study(results_dir, dataset, methods, select=select)
    if not results:
        return None
    baseline, arms = comparisons.load_arms(results_dir, dataset, methods, select)
    adversarial = load_study(results_dir, dataset, methods, adversarial=True, select=select)
    return Study(results, adversarial, baseline, arms, comparisons.comparisons(baseline, arms))


def _signed(dataset, value, percent=False, plain=False):
    """A difference with its sign, at a fixed precision (never 7.45e-09: a zero prints as 0); ``percent``: of
    accuracies, in points; ``plain``: a number in no unit (a loss); else in eps units."""
    if value is None or math.isnan(value):
        return DASH
    if percent:
        text = f"{100 * abs(value):.1f}"
    elif plain:
        text = f"{abs(value):.3f}"
    elif dataset.eps_denominator:
        text = eps_text(dataset, abs(value), EPS_STAR_NORM)
    else:
        text = f"{abs(value):.4f}"
    if not text.split("/")[0].strip("0."):  # a zero ("0", "0.000", "0/255") has no sign
        return text
    return ("-" if value < 0 else "+") + text


def _interval(dataset, row, percent=False, plain=False):
    if math.isnan(row["ci_low"]):
        return ""
    return f" [{_signed(dataset, row['ci_low'], percent, plain)}, {_signed(dataset, row['ci_high'], percent, plain)}]"


def _p(value):
    return DASH if value is None or math.isnan(value) else f"{value:.2g}"


def _per_seed(dataset, values):
    return " / ".join(eps_text(dataset, value, EPS_STAR_NORM) for value in values) if values else DASH


def _mean_sd(dataset, values):
    if not values or any(v is None or math.isinf(v) for v in values):
        return DASH
    sd = stats.sample_std(values)
    text = eps_text(dataset, stats.mean(values), EPS_STAR_NORM)
    return text + (f" ± {eps_text(dataset, sd, EPS_STAR_NORM)}" if sd is not None else "")


def _robust(arm, summary):
    """Per-seed robust counts, then the mean over seeds with its 95% cluster bootstrap interval over seeds (the
    Wilson interval of the one model where there is one seed)."""
    if summary is None:
        return DASH, DASH
    n = set(summary.n)
    counts = " / ".join(map(str, summary.n_robust)) + (f" of {summary.n[0]}" if len(n) == 1 else
                                                       f" of {' / '.join(map(str, summary.n))}")
    values = arm.values["robust_acc"]
    if len(values) == 1:
        low, high = stats.wilson_interval(summary.n_robust[0], summary.n[0])
        return counts, f"{100 * values[0]:.1f} [{100 * low:.1f}, {100 * high:.1f}] (Wilson, one model)"
    low, high = inference.seed_interval(values)
    return counts, f"{100 * stats.mean(values):.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _variant_cells(results, variant):
    method = get_method(results.method) if not variant.is_baseline else None
    strength = method.strength_text(variant.strength) if method else DASH
    training = "" if variant.adv is None else f" + {variant.adv.upper()}-AT eps={variant.adv_eps:g}"
    return [variant.method + training, variant.layer or DASH, strength, ", ".join(map(str, variant.seeds))]


def _rows(study):
    """``(results, variant)`` per row: under standard training the baseline once (from the first method), then
    each method's variants; then the same for adversarial training (the positive control, then the arms on it)."""
    rows = []
    for group in (study.results, study.adversarial):
        for index, results in enumerate(group):
            rows += [(results, v) for v in results.variants if not v.is_baseline or index == 0]
    return rows


def _arm(study, variant):
    if variant.is_baseline and variant.adv is None:
        return study.baseline
    return next(a for a in study.arms if (a.method, a.layer, a.strength, a.adv, a.adv_eps)
                == (variant.method, variant.layer, variant.strength, variant.adv, variant.adv_eps))


def _reference(study, variant):
    """The baseline variant trained as ``variant`` was (its sparsity is the zeros column's reference)."""
    group = study.results if variant.adv is None else study.adversarial
    return next((results.baseline for results in group if results.baseline), None)


def _notes(variant):
    notes = []
    if not variant.learned:
        notes.append("DID NOT LEARN")
    elif variant.not_learned_seeds:
        notes.append(f"seed {', '.join(map(str, variant.not_learned_seeds))} did not learn")
    if variant.collapsed_seeds:
        notes.append("collapsed")
    return notes


def _at_eps(study):
    """The attack radius (or radii) the study's evaluations ran at, as a header's suffix: ``" at eps 0.1"``."""
    eps = sorted({c["eps"] for r in study.results for c in r.eval_configs if c.get("eps")})
    return f" at eps {', '.join(study.dataset.format_eps(e) for e in eps)}" if eps else ""


def accuracy_table(study):
    """Per arm, seed by seed: clean accuracy, sparsity, eps* over the correctly classified images (and over all
    images, secondary), AutoAttack's robust counts with an interval across seeds, the worst case."""
    at = _at_eps(study)
    header = ["method", "layer", "strength", "seeds", "clean acc (%)",
              "zeros at the layer (%): variant / standard (trained the same way)",
              "median eps* L-inf over correctly classified images, per seed", "mean ± SD over seeds",
              "all-image median eps* per seed (secondary: 0 for misclassified images)",
              f"AutoAttack robust{at}, per seed (k of n)",
              "AutoAttack robust (%): mean over seeds [95% cluster bootstrap over seeds]",
              f"{WORST_CASE_NOTE} (%)", "notes"]
    rows = []
    for results, variant in _rows(study):
        arm = _arm(study, variant)
        zeros = DASH
        if not variant.is_baseline:
            baseline = _reference(study, variant)
            base = baseline.sparsity.get(variant.layer) if baseline else None
            zeros = f"{percent_text(variant.own_sparsity)} / {percent_text(base)}"
        counts, robust = _robust(arm, variant.attacks.get(comparisons.ROBUST_ATTACK))
        rows.append(_variant_cells(results, variant) + [
            percent_text(variant.clean_acc), zeros, _per_seed(study.dataset, arm.values["eps_star_correct"]),
            _mean_sd(study.dataset, arm.values["eps_star_correct"]),
            _per_seed(study.dataset, arm.values["eps_star_all"]), counts, robust, percent_text(variant.worst_case),
            "; ".join(_notes(variant))])
    return markdown_table(header, rows)


def comparison_table(study):
    """One row per comparison (each reference against itself first), each statistic's effect, interval, p and
    verdict."""
    header = ["comparison", "seeds: arm / reference",
              "median eps* (correct images): difference of seed means [95% CI]", "p", "p Holm",
              "equivalence (±10%): p Holm", "verdict", "clean acc (points) [95% CI]", "verdict",
              "all-image median eps* [95% CI]", "verdict", "AutoAttack robust (points) [95% CI]", "verdict",
              "final training loss: arm / reference (mean over seeds), difference [95% CI]", "verdict"]
    by_arm = {}
    for row in study.rows:
        by_arm.setdefault(row["arm"], {})[row["statistic"]] = row
    dataset, lines = study.dataset, []
    for label, rows in by_arm.items():
        eps, every, clean, robust, loss = (rows[s] for s in ("eps_star_correct", "eps_star_all", "clean_acc",
                                                              "robust_acc", "train_loss"))
        lines.append([label, f"{eps['n_seeds']} / {eps['n_baseline_seeds']}",
                      _signed(dataset, eps["effect"]) + _interval(dataset, eps), _p(eps["p"]), _p(eps["p_holm"]),
                      _p(eps["p_tost_holm"]), f"**{eps['verdict']}**",
                      _signed(dataset, clean["effect"], True) + _interval(dataset, clean, True), clean["verdict"],
                      _signed(dataset, every["effect"]) + _interval(dataset, every), every["verdict"],
                      _signed(dataset, robust["effect"], True) + _interval(dataset, robust, True),
                      robust["verdict"], _fit(dataset, loss), loss["verdict"]])
    return markdown_table(header, lines)


def _both(dataset, row, percent=False):
    """``arm / reference, difference [95% CI]`` of one comparison row, seed means."""
    if row["arm_mean"] is None:
        return DASH
    value = (lambda v: f"{100 * v:.1f}") if percent else (lambda v: eps_text(dataset, v, EPS_STAR_NORM))
    return (f"{value(row['arm_mean'])} / {value(row['baseline_mean'])}, {_signed(dataset, row['effect'], percent)}"
            f"{_interval(dataset, row, percent)}")


def verdict_table(study):
    """The study's verdicts at a glance (the README leads with it): per comparison, each reference against itself
    first, the median eps* over correctly classified images and AutoAttack's robust accuracy as seed means of arm and
    reference, their difference with its 95% interval, the Holm-adjusted p and the verdict; clean accuracy and the
    failed checks (gradient masking's signs) beside."""
    header = ["comparison", "against", "seeds: arm / reference",
              "median eps* over correct images (the least of FAB, the APGD bisection and every attack run), seed "
              "means: arm / reference, difference [95% CI]", "p Holm", "verdict",
              f"AutoAttack (standard) robust{_at_eps(study)} (%), seed means: arm / reference, difference in points "
              f"[95% CI]", "p Holm", "verdict", "clean accuracy (%): arm / reference, difference [95% CI]", "verdict",
              "failed checks of its models (where one failed, eps* or robust accuracy may overstate robustness)"]
    by_arm = {}
    for row in study.rows:
        by_arm.setdefault(row["arm"], {})[row["statistic"]] = row
    failed = {comparisons.arm_label(_arm(study, variant)): variant.failed_checks for _, variant in _rows(study)}
    lines = []
    for label, rows in by_arm.items():
        eps, robust, clean = rows["eps_star_correct"], rows["robust_acc"], rows["clean_acc"]
        checks = failed[eps["reference"] if comparisons.is_null(eps) else label]  # a null: its reference's models
        lines.append([label, eps["reference"], f"{eps['n_seeds']} / {eps['n_baseline_seeds']}",
                      _both(study.dataset, eps), _p(eps["p_holm"]), f"**{eps['verdict']}**",
                      _both(study.dataset, robust, True), _p(robust["p_holm"]), robust["verdict"],
                      _both(study.dataset, clean, True), clean["verdict"], "; ".join(checks) or "none"])
    return markdown_table(header, lines)


def check_table(dataset, rows):
    """Comparison rows (``comparisons.comparisons``, as judged there) on the median eps* over correctly classified
    images and clean accuracy: seed means of arm and reference, their difference with its 95% interval, the raw and
    the Holm-adjusted p and the verdict. For a check beside a study (another set of its reference's seeds), whose
    families are its own."""
    header = ["comparison", "against", "seeds: arm / reference",
              "median eps* over correct images, seed means: arm / reference, difference [95% CI]", "p", "p Holm",
              "verdict", "clean accuracy (%): arm / reference, difference [95% CI]", "p Holm", "verdict"]
    by_arm = {}
    for row in rows:
        by_arm.setdefault(row["arm"], {})[row["statistic"]] = row
    lines = []
    for label, statistics in by_arm.items():
        eps, clean = statistics["eps_star_correct"], statistics["clean_acc"]
        lines.append([label, eps["reference"], f"{eps['n_seeds']} / {eps['n_baseline_seeds']}", _both(dataset, eps),
                      _p(eps["p"]), _p(eps["p_holm"]), f"**{eps['verdict']}**", _both(dataset, clean, True),
                      _p(clean["p_holm"]), clean["verdict"]])
    return markdown_table(header, lines)


def _fit(dataset, row):
    """How far an arm's final training loss is from its reference's: both means and their difference."""
    if row["arm_mean"] is None:
        return DASH
    return (f"{row['arm_mean']:.3f} / {row['baseline_mean']:.3f}, {_signed(dataset, row['effect'], plain=True)}"
            f"{_interval(dataset, row, plain=True)}")


def _queries(summary):
    median = summary.get("median_queries_correct").mean
    return DASH if median is None else f"{median:.0f}"


def black_box_table(study):
    """Each query-based attack's robust count per seed and median queries, and the checks that failed."""
    studies = study.results + study.adversarial
    keys = list(dict.fromkeys(key for results in studies for key in results.attacks_where(counts_queries=True)))
    titles = {key: info.title for results in studies for key, info in results.attack_info.items()}
    header = (["method", "layer", "strength", "seeds"]
              + [f"{titles[key]}: robust per seed of n (median queries, mean over seeds)" for key in keys]
              + ["failed checks"])
    rows = []
    for results, variant in _rows(study):
        cells = []
        for key in keys:
            summary = variant.attacks.get(key)
            if summary is None:
                cells.append(DASH)
                continue
            n = "/".join(map(str, sorted(set(summary.n))))
            cells.append(f"{' / '.join(map(str, summary.n_robust))} of {n} ({_queries(summary)})")
        rows.append(_variant_cells(results, variant) + cells + ["; ".join(variant.failed_checks) or "none"])
    return markdown_table(header, rows)


def study_markdown(study):
    """A study page's tables (deterministic: the same files give the same text)."""
    return "\n".join(accuracy_table(study) + [""] + comparison_table(study) + [""]
                     + black_box_table(study)) + "\n"
