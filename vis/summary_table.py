"""``results/{dataset}/{method}/summary.md``: every number behind the figures as markdown tables."""

from sparsity.measure import LEARNED_MARGIN

DASH = "—"
QUERY_HEADERS = (("median_queries_correct", "median queries (fooled & correct)"),
                 ("mean_queries_correct", "mean queries (fooled & correct)"),
                 ("median_queries", "median queries (fooled, all)"),
                 ("median_queries_all", "median queries (all n)"))


def _percent(stat):
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


def _table(header, rows):
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
        rows.append([v.label, _seeds(v.seeds), _counts(v.n_test), _percent(v.clean_acc), _counts(v.worst_case_n),
                     _percent(v.worst_case), _percent(v.own_sparsity),
                     _percent(base_at_layer) if not v.is_baseline else DASH, "; ".join(_notes(v))])
    return _table(["variant", "seeds", "n_test", "clean acc (%)", "n attacked",
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
               _percent(run.get("robust_acc")), _percent(run.get("success_rate_correct")),
               _percent(run.get("success_rate_all"))]
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
    lines += _table(header, rows)
    lacking = [v.label for v in results.variants if key not in v.attacks and v.learned]
    if lacking:
        lines += ["", f"Not evaluated with this attack: {', '.join(lacking)}."]
    return lines + [""]


def _curves_section(results):
    keys = [k for k in results.attacks if any(k in v.curves for v in results.variants)]
    lines = []
    for key in keys:
        eps_values = sorted({eps for v in results.variants for eps in v.curves.get(key, {})})
        rows = [[v.label] + [_percent(v.curves[key].get(eps)) for eps in eps_values]
                for v in results.variants if key in v.curves]
        lines += [f"## Robustness curve: {results.attack_info[key].title}", "",
                  "Robust accuracy (%) over all n attacked images at each eps.", ""]
        lines += _table(["variant"] + [f"eps {results.dataset.format_eps(eps)}" for eps in eps_values], rows) + [""]
    return lines


def _sparsity_table(results):
    layers = [layer for layer in results.layer_names if any(layer in v.sparsity for v in results.variants)]
    rows = [[v.label] + [_percent(v.sparsity.get(layer)) for layer in layers] for v in results.variants]
    return _table(["variant"] + [f"{layer} (%)" for layer in layers], rows)


def _checks_table(records):
    names = list(dict.fromkeys(check["name"] for record in records for check in record.checks))
    rows = [[record.variant.name] + [next((c["status"] for c in record.checks if c["name"] == name), DASH)
                                     for name in names] for record in records]
    return _table(["result file"] + names, rows) if names else ["No sanity check was recorded."]


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
    lines += _curves_section(results)
    lines += ["## Sanity checks", "", "passed / failed / not_run per result file (details in each JSON file's "
              "`checks`).", ""] + _checks_table(records) + [""]
    lines += ["## Activation sparsity of every layer (%)", ""] + _sparsity_table(results) + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)
