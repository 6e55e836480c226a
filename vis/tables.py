"""A study's tables for docs/studies/ and the README, as deterministic markdown of what ``analysis`` computed (its
arms' per-seed values, its comparisons' effects, intervals, p and verdicts): nothing here computes a statistic."""
import math

from analysis import inference
from analysis.arms import EPS_STAR_NORM, ROBUST_ATTACK
from analysis.comparisons import arm_label, is_null
from common import stats
from sparsity.methods import get_method

DASH = "—"
WORST_CASE_NOTE = "worst case over every attack run and eps*"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def percent_text(stat):
    if stat is None or stat.mean is None:
        return DASH
    return f"{100 * stat.mean:.1f}" + (f" ± {100 * stat.std:.1f}" if stat.std is not None else "")


def eps_text(dataset, value, norm):
    """eps of ``norm`` as tables write it (L-inf in the data set's units); a censored value (None, inf) as such."""
    if value is None or math.isinf(value):
        return "censored"
    return dataset.format_eps(value) if norm == "linf" else f"{value:.3g}"


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
    """Per-seed robust counts, then the mean over seeds with its 95% t interval over seeds (the Wilson interval of
    the one model where there is one seed); a count of zero on every seed carries its upper bound per model."""
    if summary is None:
        return DASH, DASH
    n = set(summary.n)
    counts = " / ".join(map(str, summary.n_robust)) + (f" of {summary.n[0]}" if len(n) == 1 else
                                                       f" of {' / '.join(map(str, summary.n))}")
    values = arm.values["robust_acc"]
    if len(values) == 1:
        low, high = stats.wilson_interval(summary.n_robust[0], summary.n[0])
        return counts, f"{100 * values[0]:.1f} [{100 * low:.1f}, {100 * high:.1f}] (Wilson, one model)"
    if not any(summary.n_robust):
        return counts, f"0.0 (0 on every seed: each ≤ {100 * inference.zero_count_bound(max(n)):.1f}%, one-sided 95%)"
    low, high = inference.seed_interval(values)
    return counts, f"{100 * stats.mean(values):.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _by_arm(rows):
    """Comparison rows as ``{arm label: {statistic: row}}``, in their order."""
    by_arm = {}
    for row in rows:
        by_arm.setdefault(row["arm"], {})[row["statistic"]] = row
    return by_arm


def _arm_cells(arm):
    spec = arm.spec
    strength = DASH if spec.is_baseline else get_method(spec.method).strength_text(spec.strength)
    training = "" if spec.adv is None else f" + {spec.adv.upper()}-AT eps={spec.adv_eps:g}"
    return [spec.method + training, spec.layer or DASH, strength, ", ".join(map(str, arm.all_seeds))]


def _notes(arm):
    notes = []
    if not arm.learned:
        notes.append("DID NOT LEARN")
    elif arm.not_learned_seeds:
        notes.append(f"seed {', '.join(map(str, arm.not_learned_seeds))} did not learn")
    if arm.collapsed_seeds:
        notes.append("collapsed")
    return notes


def _at_eps(study):
    """The attack radius (or radii) the study's evaluations ran at, as a header's suffix: ``" at eps 0.1"``."""
    eps = sorted({c["eps"] for arm in study.arms for c in arm.eval_configs if c.get("eps")})
    return f" at eps {', '.join(study.dataset.format_eps(e) for e in eps)}" if eps else ""


def accuracy_table(study):
    """Per arm, seed by seed: clean accuracy, sparsity, eps*, AutoAttack's robust counts, the worst case."""
    at = _at_eps(study)
    header = ["method", "layer", "strength", "seeds", "clean acc (%)",
              "zeros at the layer (%): variant / standard (trained the same way)",
              "median eps* L-inf over correctly classified images, per seed", "mean ± SD over seeds",
              "all-image median eps* per seed (secondary: 0 for misclassified images)",
              f"AutoAttack robust{at}, per seed (k of n)",
              "AutoAttack robust (%): mean over seeds [95% t interval over seeds]",
              f"{WORST_CASE_NOTE} (%)", "notes"]
    rows = []
    for arm in study.arms:
        zeros = DASH
        if not arm.spec.is_baseline:
            baseline = study.arm(arm.spec.baseline)
            base = baseline.sparsity(arm.spec.layer) if baseline else None
            zeros = f"{percent_text(arm.own_sparsity)} / {percent_text(base)}"
        counts, robust = _robust(arm, arm.attack(ROBUST_ATTACK))
        rows.append(_arm_cells(arm) + [
            percent_text(arm.clean_acc), zeros, _per_seed(study.dataset, arm.values["eps_star_correct"]),
            _mean_sd(study.dataset, arm.values["eps_star_correct"]),
            _per_seed(study.dataset, arm.values["eps_star_all"]), counts, robust, percent_text(arm.worst_case),
            "; ".join(_notes(arm))])
    return markdown_table(header, rows)


def comparison_table(study):
    """One row per comparison (each reference against itself first): each statistic's effect, interval, p, verdict."""
    header = ["comparison", "seeds: arm / reference",
              "median eps* (correct images): difference of seed means [95% CI]", "p", "p Holm",
              "equivalence (±10%): p Holm", "verdict", "clean acc (points) [95% CI]", "verdict",
              "all-image median eps* [95% CI]", "verdict", "AutoAttack robust (points) [95% CI]", "verdict",
              "final training loss: arm / reference (mean over seeds), difference [95% CI]", "verdict"]
    by_arm = _by_arm(study.rows)
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
    """The study's verdicts at a glance (the README leads with it): eps*, AutoAttack and clean accuracy per
    comparison, and the failed checks (gradient masking's signs)."""
    header = ["comparison", "against", "seeds: arm / reference",
              "median eps* over correct images (the least of FAB, the APGD bisection and every attack run), seed "
              "means: arm / reference, difference [95% CI]", "p Holm", "verdict",
              f"AutoAttack (standard) robust{_at_eps(study)} (%), seed means: arm / reference, difference in points "
              f"[95% CI]", "p Holm", "verdict", "clean accuracy (%): arm / reference, difference [95% CI]", "verdict",
              "failed checks of its models (where one failed, eps* or robust accuracy may overstate robustness)"]
    by_arm = _by_arm(study.rows)
    failed = {arm_label(arm): arm.failed_checks for arm in study.arms}
    lines = []
    for label, rows in by_arm.items():
        eps, robust, clean = rows["eps_star_correct"], rows["robust_acc"], rows["clean_acc"]
        checks = failed[eps["reference"] if is_null(eps) else label]  # a null: its reference's models
        lines.append([label, eps["reference"], f"{eps['n_seeds']} / {eps['n_baseline_seeds']}",
                      _both(study.dataset, eps), _p(eps["p_holm"]), f"**{eps['verdict']}**",
                      _both(study.dataset, robust, True), _p(robust["p_holm"]), robust["verdict"],
                      _both(study.dataset, clean, True), clean["verdict"], "; ".join(checks) or "none"])
    return markdown_table(header, lines)


def check_table(dataset, rows):
    """Comparison rows on eps* and clean accuracy, for a check beside a study (another set of its reference's seeds,
    its own Holm families)."""
    header = ["comparison", "against", "seeds: arm / reference",
              "median eps* over correct images, seed means: arm / reference, difference [95% CI]", "p", "p Holm",
              "verdict", "clean accuracy (%): arm / reference, difference [95% CI]", "p Holm", "verdict"]
    by_arm = _by_arm(rows)
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
    runs = {key: entry for arm in study.arms for record in arm.records for key, entry in record.attacks.items()}
    keys = [key for key, entry in runs.items() if entry.counts_queries]
    header = (["method", "layer", "strength", "seeds"]
              + [f"{runs[key].title}: robust per seed of n (median queries, mean over seeds)" for key in keys]
              + ["failed checks"])
    rows = []
    for arm in study.arms:
        cells = []
        for key in keys:
            summary = arm.attack(key)
            if summary is None:
                cells.append(DASH)
                continue
            n = "/".join(map(str, sorted(set(summary.n))))
            cells.append(f"{' / '.join(map(str, summary.n_robust))} of {n} ({_queries(summary)})")
        rows.append(_arm_cells(arm) + cells + ["; ".join(arm.failed_checks) or "none"])
    return markdown_table(header, rows)


def machines_table(study):
    """Which kinds of CPU evaluated each comparison's models (seeds per kind): different kinds confound the machine
    with the arm."""
    by_label = {arm_label(arm): arm for arm in study.arms}
    lines = []
    for label in dict.fromkeys(row["arm"] for row in study.rows if not is_null(row)):
        row = next(row for row in study.rows if row["arm"] == label)
        kinds = [", ".join(f"{kind} {n}" for kind, n in by_label[name].kinds().items())
                 for name in (label, row["reference"])]
        lines.append([label, row["reference"], kinds[0], kinds[1],
                      "yes" if set(by_label[label].kinds()) == set(by_label[row["reference"]].kinds()) else
                      "**no: the machine is confounded with the arm**"])
    return markdown_table(["comparison", "against", "arm's seeds evaluated on", "reference's seeds evaluated on",
                           "one kind of CPU on both sides"], lines)


def study_markdown(study):
    """A study page's tables (deterministic: the same files give the same text)."""
    return "\n".join(accuracy_table(study) + [""] + comparison_table(study) + [""] + black_box_table(study) + [""]
                     + machines_table(study)) + "\n"
