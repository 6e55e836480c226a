"""``results/{dataset}/{method}/summary.md``: every number behind the figures as markdown tables."""
import math

from sparsity.measure import LEARNED_MARGIN
from vis.eps_star import eps_text

DASH = "—"
QUERY_HEADERS = (("median_queries_correct", "median queries (fooled & correct)"),
                 ("mean_queries_correct", "mean queries (fooled & correct)"),
                 ("median_queries", "median queries (fooled, all)"),
                 ("median_queries_all", "median queries (all n)"))


def percent_text(stat):
    if stat is None or stat.mean is None:
        return DASH
    return f"{100 * stat.mean:.1f}" + (f" ± {100 * stat.std:.1f}" if stat.std is not None else "")


def _queries(stat):
    if stat is None or stat.mean is None:
        return DASH
    return f"{stat.mean:.0f}" + (f" ± {stat.std:.0f}" if stat.std is not None else "")


def _counts(values):
    """One number when every seed used the same count, else the count of each seed in seed order."""
    if not values:
        return DASH
    return str(values[0]) if len(set(values)) == 1 else ", ".join(map(str, values))


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _seeds(seeds):
    return ", ".join(map(str, seeds))


def _notes(variant):
    notes = []
    if variant.not_learned_seeds:
        notes.append(f"DID NOT LEARN (seed {_seeds(variant.not_learned_seeds)}; not compared)")
    if variant.collapsed_seeds:
        notes.append(f"collapsed (seed {_seeds(variant.collapsed_seeds)})")
    return notes + [f"failed check {name}" for name in variant.failed_checks]


def _overview(results):
    baseline = results.baseline
    rows = []
    for v in results.variants:
        base_at_layer = baseline.sparsity.get(v.layer) if baseline and not v.is_baseline else None
        rows.append([v.label, _seeds(v.seeds), _counts(v.n_test), percent_text(v.clean_acc), _counts(v.worst_case_n),
                     percent_text(v.worst_case), percent_text(v.own_sparsity),
                     percent_text(base_at_layer) if not v.is_baseline else DASH, "; ".join(_notes(v))])
    return markdown_table(["variant", "seeds", "n_test", "clean acc (%)", "n attacked",
                   "robust acc, worst case over every attack (%)", "sparsity of regularised layer (%)",
                   "standard's sparsity at that layer (%)", "notes"], rows)


def _attack_section(results, key):
    info = results.attack_info[key]
    have = [v for v in results.variants if key in v.attacks]
    header = ["variant", "seeds", "n", "n_correct", "robust acc, all n (%)", "success, n_correct (%)",
              "success, all n (%) (original repo's number)"]
    query_fields = [(f, h) for f, h in QUERY_HEADERS if info.counts_queries]
    if info.counts_queries:
        header += ["fooled/correct"] + [h for _, h in query_fields]
    rows = []
    for v in have:
        run = v.attacks[key]
        row = [v.label, _seeds(run.seeds), _counts(run.n), _counts(run.n_correct),
               percent_text(run.get("robust_acc")), percent_text(run.get("success_rate_correct")),
               percent_text(run.get("success_rate_all"))]
        if info.counts_queries:
            fooled = DASH if None in run.n_fooled_correct else f"{sum(run.n_fooled_correct)}/{sum(run.n_correct)}"
            row += [fooled] + [_queries(run.get(f)) for f, _ in query_fields]
        rows.append(row)
    settings = next(iter(have)).attacks[key].settings if have else {}
    lines = [f"## {info.title} ({info.threat_model}, {'targeted' if info.targeted else 'untargeted'})", ""]
    if settings:
        lines += ["Settings: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in settings.items() if v is not None) + ".", ""]
    if info.counts_queries:
        lines += ["Queries: model evaluations per image. *fooled & correct*: over the images classified correctly "
                  "and then fooled (the figures' number); *fooled, all*: over every fooled image, initially "
                  "misclassified ones at 1 query; *all n*: over every attacked image (an image not fooled counts "
                  "the queries it used).", ""]
    lines += markdown_table(header, rows)
    lacking = [v.label for v in results.variants if key not in v.attacks and v.learned]
    if lacking:
        lines += ["", f"Not evaluated with this attack: {', '.join(lacking)}."]
    return lines + [""]


def _curves_section(results):
    keys = [k for k in results.attacks if any(k in v.curves for v in results.variants)]
    lines = []
    for key in keys:
        eps_values = sorted({eps for v in results.variants for eps in v.curves.get(key, {})})
        rows = [[v.label] + [percent_text(v.curves[key].get(eps)) for eps in eps_values]
                for v in results.variants if key in v.curves]
        lines += [f"## Robustness curve: {results.attack_info[key].title}", "",
                  "Robust accuracy (%) over all n attacked images at each eps.", ""]
        lines += markdown_table(["variant"] + [f"eps {results.dataset.format_eps(eps)}" for eps in eps_values], rows) + [""]
    return lines


def interval_text(dataset, low, high, norm, limit):
    upper = (f"> {eps_text(dataset, limit, norm)} (past the limit)" if math.isinf(high)
             else eps_text(dataset, high, norm))
    lower = "-inf" if math.isinf(low) and low < 0 else eps_text(dataset, low, norm)
    return f"[{lower}, {upper}]"


def paired_text(dataset, summary, norm):
    if summary.paired is None:
        return summary.not_paired or DASH
    paired = summary.paired
    if paired.median_low == paired.median_high:
        median = _signed(dataset, paired.median_low, norm)
    else:
        median = f"between {_signed(dataset, paired.median_low, norm)} and {_signed(dataset, paired.median_high, norm)}"
    interval = f"[{_signed(dataset, paired.low, norm)}, {_signed(dataset, paired.high, norm)}]"
    unknown = f", {paired.n_unknown} censored in both" if paired.n_unknown else ""
    return f"{median} {interval} (n = {paired.n}{unknown})"


# eps* is found on float32 images, so differences below this are rounding (a bound of -7.45e-09 printed as such
# read as a real negative shift)
ROUNDING = 1e-6


def _signed(dataset, value, norm):
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    if abs(value) < ROUNDING:
        return "0"
    text = eps_text(dataset, abs(value), norm)
    return ("-" if value < 0 else "+") + text


def _at_eps(summary, eps):
    """Robust accuracy (%) at the attacks' eps, read off the eps* curve (the last grid point not above it)."""
    points = [(e, mean) for e, mean, _ in summary.curve if e <= eps * (1 + 1e-9)]
    return f"{100 * points[-1][1]:.1f}" if points and eps <= summary.limit else DASH


def _eps_star_section(results):
    norms = [norm for norm in ("linf", "l2") if any(norm in v.eps_star for v in results.variants)]
    if not norms:
        return []
    eps = sorted({config.get("eps") for config in results.eval_configs if config.get("eps")})
    dataset = results.dataset
    lines = ["## Smallest fooling perturbation eps*", "",
             "Per image, the smaller of FAB's (minimum-norm attack) and a PGD bisection's smallest perturbation that "
             "fools the model, checked to fool it; 0 for an image misclassified clean; censored where neither fooled "
             "it within the search limit (counted, never dropped: a censored median means more than half the images "
             "were not fooled within the limit). Medians over images, pooled over the seeds listed (n = images x "
             "seeds); intervals: 95% percentile bootstrap over images (2,000 resamples). Paired difference: median "
             "over the same images of (variant's eps* - standard's eps*), same seed. L-inf in the units of "
             f"{dataset.title} ({dataset.eps_unit}), L2 on the [0, 1] pixel scale.", ""]
    for norm in norms:
        have = [v for v in results.variants if norm in v.eps_star]
        rows = []
        for v in have:
            summary = v.eps_star[norm]
            rows.append([v.label, _seeds(summary.seeds), str(summary.n), str(summary.n_clean_misclassified),
                         str(summary.n_censored), eps_text(dataset, summary.median, norm),
                         interval_text(dataset, summary.low, summary.high, norm, summary.limit),
                         eps_text(dataset, summary.fab_median, norm), eps_text(dataset, summary.pgd_median, norm)]
                        + ([_at_eps(summary, eps[0])] if norm == "linf" and len(eps) == 1 else [])
                        + [paired_text(dataset, summary, norm)])
        limits = sorted({v.eps_star[norm].limit for v in have})
        header = ["variant", "seeds", "n", "misclassified clean", "censored", "median eps*", "95% interval",
                  "FAB median", "PGD bisection median"]
        if norm == "linf" and len(eps) == 1:
            header.append(f"robust acc at eps {eps_text(dataset, eps[0], norm)} (%)")
        lines += [f"### {'L-inf' if norm == 'linf' else 'L2'} (search limit "
                  f"{', '.join(eps_text(dataset, limit, norm) for limit in limits)})", ""]
        lines += markdown_table(header + ["paired difference to standard [95% interval]"], rows) + [""]
    return lines


def _sparsity_table(results):
    layers = [layer for layer in results.layer_names if any(layer in v.sparsity for v in results.variants)]
    rows = [[v.label] + [percent_text(v.sparsity.get(layer)) for layer in layers] for v in results.variants]
    return markdown_table(["variant"] + [f"{layer} (%)" for layer in layers], rows)


def _checks_table(records):
    names = list(dict.fromkeys(check.name for record in records for check in record.checks))
    rows = [[record.spec.name] + [next((c.status for c in record.checks if c.name == name), DASH)
                                     for name in names] for record in records]
    return markdown_table(["result file"] + names, rows) if names else ["No sanity check was recorded."]


def summary_markdown(results, records, notes=()):
    """The markdown text of ``summary.md`` (deterministic: no dates, paths relative to the results folder)."""
    method = results.sparsity_method
    lines = [
        f"# Results on {results.dataset.title}: {method.title} at one layer (`{method.name}`)",
        "",
        f"{results.file_count} result file{'s' if results.file_count != 1 else ''} from `{results.folder.name}/`, "
        f"seeds {_seeds(results.seeds)}. Values are mean ± sample standard deviation over the seeds listed per row "
        f"(no ± with one seed); seeds that did not learn (clean accuracy within {100 * LEARNED_MARGIN:.0f} points "
        "of chance) are left out of every value and named in the notes. Rates are percentages of the "
        "stated denominator: *all n* = every attacked image, *n_correct* = those the model classified correctly "
        "before the attack. *success, all n* is the original repository's number: it counts initially "
        "misclassified images as successes, so it mixes clean error into robustness and is not plotted.",
        "",
        "## Clean accuracy, worst-case robust accuracy and sparsity of the regularised layer",
        "",
        "Sparsity = fraction of exact zeros in the layer's output activation on the test set. The robust accuracy "
        "to lead with is the per-image worst case over every attack run (as RobustBench reports): an image counts "
        "as robust only if every attack run on it failed and, where eps* was measured in L-inf, its eps* exceeds "
        "eps; over the n attacked images (the query-based attacks ran on their subset of them). One attack's "
        "number alone overstates robustness wherever that attack is weak on a model (see the sanity checks).",
        "",
    ]
    lines += _overview(results) + [""]
    for key in results.attacks:
        lines += _attack_section(results, key)
    if not results.attacks:
        lines += ["## Attacks", "", "No attack results in these files.", ""]
    lines += _eps_star_section(results)
    lines += _curves_section(results)
    lines += ["## Sanity checks", "", "passed / failed / not_run per result file (details in each JSON file's "
              "`checks`).", ""] + _checks_table(records) + [""]
    lines += ["## Activation sparsity of every layer (%)", ""] + _sparsity_table(results) + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)
