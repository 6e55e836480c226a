"""``summary.md`` (every number behind the figures) and ``eps_star_per_seed.csv`` (one row per model) of one method's
arms: each number is one seed's or a mean ± sample SD over seeds."""
import csv
import io
import math

from analysis.arms import Stat, seed_eps_star
from sparsity.measure import LEARNED_MARGIN
from vis.figures import NORMS, settings_text
from vis.tables import DASH, eps_text, markdown_table, percent_text

QUERY_HEADERS = (("median_queries_correct", "median queries (fooled & correct)"),
                 ("mean_queries_correct", "mean queries (fooled & correct)"),
                 ("median_queries", "median queries (fooled, all)"),
                 ("median_queries_all", "median queries (all n)"))
CSV_NAME = "eps_star_per_seed.csv"
CSV_FIELDS = ("limit", "n", "n_clean_misclassified", "n_censored", "median_correct", "median_all")


def _seeds(seeds):
    return ", ".join(map(str, seeds)) or DASH


def _counts(values):
    """One number when every seed has the same, else each seed's in seed order."""
    values = list(values)
    return DASH if not values else str(values[0]) if len(set(values)) == 1 else ", ".join(map(str, values))


def _queries(stat):
    return DASH if stat.mean is None else f"{stat.mean:.0f}" + (f" ± {stat.std:.0f}" if stat.std is not None else "")


def _notes(arm):
    notes = [f"DID NOT LEARN (seed {_seeds(arm.not_learned_seeds)}; not compared)"] if arm.not_learned_seeds else []
    notes += [f"collapsed (seed {_seeds(arm.collapsed_seeds)})"] if arm.collapsed_seeds else []
    return "; ".join(notes + [f"failed check {name}" for name in arm.failed_checks])


def _overview(results):
    base = results.baseline
    rows = [[arm.spec.label, _seeds(arm.all_seeds), _counts(r.n_test for r in arm.records), percent_text(arm.clean_acc),
             _counts(r.worst_case.n for r in arm.records if r.worst_case), percent_text(arm.worst_case),
             percent_text(arm.own_sparsity),
             DASH if arm.spec.is_baseline or base is None else percent_text(base.sparsity(arm.spec.layer)),
             _notes(arm)] for arm in results.arms]
    return markdown_table(["arm", "seeds", "n_test", "clean acc (%)", "n attacked",
                           "robust acc, worst case over every attack (%)", "sparsity of regularised layer (%)",
                           "standard's sparsity at that layer (%)", "notes"], rows)


def _attack_section(results, key):
    entry = results.attacks[key]
    header = ["arm", "seeds", "n", "n_correct", "robust acc, all n (%)", "success, n_correct (%)",
              "success, all n (%) (original repo's number)"]
    header += ["fooled/correct per seed"] + [h for _, h in QUERY_HEADERS] if entry.counts_queries else []
    rows = []
    for arm in results.arms:
        run = arm.attack(key)
        if run:
            rows.append([arm.spec.label, _seeds(run.seeds), _counts(run.n), _counts(run.n_correct)]
                        + [percent_text(run.get(f)) for f in ("robust_acc", "success_rate_correct", "success_rate_all")]
                        + ([", ".join(f"{f}/{c}" for f, c in zip(run.n_fooled_correct, run.n_correct))]
                           + [_queries(run.get(f)) for f, _ in QUERY_HEADERS] if entry.counts_queries else []))
    settings = settings_text(entry.settings)
    lines = [f"## {entry.title} ({entry.threat_model}, {'targeted' if entry.targeted else 'untargeted'})", ""]
    lines += [f"Settings: {settings}.", ""] if settings else []
    if entry.counts_queries:
        lines += ["Queries: model evaluations per image, each model's median (or mean) over its images, then mean ± "
                  "SD over seeds. *fooled & correct*: over the images classified correctly and then fooled (the "
                  "figures' number); *fooled, all*: over every fooled image, initially misclassified ones at 1 query; "
                  "*all n*: over every attacked image (an image not fooled counts the queries it used).", ""]
    lacking = [arm.spec.label for arm in results.arms if arm.learned and not arm.attack(key)]
    table = markdown_table(header, rows) if rows else ["Only models that did not learn ran it: nothing to show."]
    return lines + table + (["", f"Not evaluated with this attack: {', '.join(lacking)}."] if lacking else []) + [""]


def _per_seed(dataset, values, norm):
    return " / ".join(eps_text(dataset, v, norm) for v in values if v is not None) or DASH


def _mean_sd(dataset, values, norm):
    stat = Stat.of(values)
    if stat.mean is None or math.isinf(stat.mean):
        return DASH
    spread = "" if stat.std is None else f" ± {eps_text(dataset, stat.std, norm)}"
    return eps_text(dataset, stat.mean, norm) + spread


def _at_eps(arm, norm, eps):
    """Robust accuracy (%) at eps read off each seed's eps* (last point not above it; none past the limit)."""
    curve = arm.eps_star_curve(norm)
    points = [stat for value, stat in curve if value <= eps * (1 + 1e-9)]
    return percent_text(points[-1]) if points and curve[-1][0] >= eps * (1 - 1e-9) else DASH


def _eps_star_section(results):
    dataset, eps = results.dataset, results.eps
    lines = ["## Smallest fooling perturbation eps*, per model", "",
             "Per image, the least of FAB's (minimum-norm attack), a bisection's and every attack run's smallest "
             "perturbation that fools the model; 0 for an image misclassified clean; censored where none fooled it "
             "within the search limit (counted, never dropped: a censored median means more than half the images were "
             "not fooled within the limit). Each model's (seed's) median over its own images, the primary one over "
             "the images it classifies correctly, the secondary over all; then mean ± sample SD over seeds. No image "
             f"is pooled across seeds. L-inf in the units of {dataset.title} ({dataset.eps_unit}), L2 on the [0, 1] "
             "pixel scale.", ""]
    for norm in results.norms():
        at = [f"robust acc at eps {eps_text(dataset, eps[0], norm)} read off eps* (%)"] if norm == "linf" and len(
            eps) == 1 else []
        rows, limits = [], set()
        for arm in results.arms:
            entries = [r.minimal[norm] for r in arm.records if norm in r.minimal]
            limits |= {e.limit for e in entries}
            correct, every = arm.eps_star(norm), arm.eps_star(norm, correct_only=False)
            if entries:
                rows.append([arm.spec.label, _seeds(s for s, e in zip(arm.seeds, correct) if e is not None),
                             *(_counts(getattr(e, f) for e in entries) for f in ("n", "n_clean_misclassified",
                                                                                   "n_censored")),
                             _per_seed(dataset, correct, norm), _mean_sd(dataset, correct, norm),
                             _per_seed(dataset, every, norm), _mean_sd(dataset, every, norm)]
                            + ([_at_eps(arm, norm, eps[0])] if at else []))
        lines += [f"### {NORMS[norm]} (search limit {', '.join(eps_text(dataset, x, norm) for x in sorted(limits))})",
                  ""]
        lines += markdown_table(["arm", "seeds", "n per seed", "misclassified clean", "censored",
                                 "median eps* over correct images, per seed", "mean ± SD over seeds",
                                 "median eps* over all images, per seed (secondary)", "mean ± SD over seeds", *at],
                                rows) + [""]
    return lines if results.norms() else []


def _sweep_section(results):
    lines = []
    for key in results.attacks:
        curves = {arm.spec.label: arm.sweep_curve(key) for arm in results.arms if arm.sweep_curve(key)}
        eps_values = sorted({eps for curve in curves.values() for eps in curve})
        if curves:
            lines += [f"## Robustness curve: {results.attacks[key].title}", "",
                      "Robust accuracy (%) over all n attacked images at each eps, mean ± SD over seeds.", ""]
            lines += markdown_table(["arm"] + [f"eps {results.dataset.format_eps(e)}" for e in eps_values],
                                    [[label] + [percent_text(curve.get(e)) for e in eps_values]
                                     for label, curve in curves.items()]) + [""]
    return lines


def _checks_table(records):
    names = list(dict.fromkeys(check.name for record in records for check in record.checks))
    rows = [[record.spec.name] + [next((c.status for c in record.checks if c.name == name), DASH) for name in names]
            for record in records]
    return markdown_table(["result file"] + names, rows) if names else ["No sanity check was recorded."]


def _sparsity_table(results, records):
    layers = [layer for layer in results.layer_names if any(layer in r.sparsity for r in records)]
    return markdown_table(["arm"] + [f"{layer} (%)" for layer in layers],
                          [[arm.spec.label] + [percent_text(arm.sparsity(layer)) for layer in layers]
                           for arm in results.arms])


def summary_markdown(results, records, notes=()):
    """The text of ``summary.md`` (deterministic: no dates, no paths)."""
    method, seeds = results.method, sorted({r.spec.seed for r in records})
    lines = [
        f"# Results on {results.dataset.title}: {method.title} at one layer (`{method.name}`)", "",
        f"{len(records)} result file{'s' if len(records) != 1 else ''}, seeds {_seeds(seeds)}. One trained model "
        "(seed) is the unit: values are mean ± sample standard deviation over the seeds listed per row (no ± with "
        f"one seed); seeds that did not learn (clean accuracy within {100 * LEARNED_MARGIN:.0f} points of chance) are "
        "left out of every value and named in the notes. Rates are percentages of the stated denominator: *all n* = "
        "every attacked image, *n_correct* = those the model classified correctly before the attack. *success, all "
        "n* is the original repository's number: it counts initially misclassified images as successes, so it mixes "
        "clean error into robustness and is not plotted.", "",
        "## Clean accuracy, worst-case robust accuracy and sparsity of the regularised layer", "",
        "Sparsity = fraction of exact zeros in the layer's output activation on the test set. The robust accuracy to "
        "lead with is the per-image worst case over every attack run (as RobustBench reports): an image counts as "
        "robust only if every attack run on it failed and, where eps* was measured in L-inf, its eps* exceeds eps; "
        "over the n attacked images (the query-based attacks ran on their subset of them).", ""]
    lines += _overview(results) + [""]
    for key in results.attacks:
        lines += _attack_section(results, key)
    lines += [] if results.attacks else ["## Attacks", "", "No attack results in these files.", ""]
    lines += _eps_star_section(results) + _sweep_section(results)
    lines += ["## Sanity checks", "", "passed / failed / not_run per result file (details in each JSON file's "
              "`checks`).", ""] + _checks_table(records) + [""]
    lines += ["## Activation sparsity of every layer (%)", ""] + _sparsity_table(results, records) + [""]
    lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""] if notes else []
    return "\n".join(lines)


def seeds_csv(records):
    """``eps_star_per_seed.csv``: one row per model, per norm its limit, counts and median eps* (docs/usage.md)."""
    norms = [norm for norm in NORMS if any(norm in r.minimal for r in records)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "method", "layer", "strength", "seed", "learned"]
                    + [f"{norm}_{field}" for norm in norms for field in CSV_FIELDS])
    for r in records:
        row = [r.spec.name, r.spec.method, r.spec.layer or "", r.spec.strength, r.spec.seed,
               "false" if r.learned is False else "true"]
        for norm in norms:
            e = r.minimal.get(norm)
            row += [""] * len(CSV_FIELDS) if e is None else [e.limit, e.n, e.n_clean_misclassified, e.n_censored,
                                                              seed_eps_star(r, norm), seed_eps_star(r, norm, False)]
        writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()
