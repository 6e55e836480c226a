"""``results/{method}/summary.md``: every number behind the figures as markdown tables."""
from models.simple_cnn import LAYER_NAMES
from vis.results_io import QUERY_FIELDS, attack_title, nes_attack

DASH = "—"
METHOD_NAME = {"l1": "L1 activation penalty", "dropout": "Dropout"}
QUERY_HEADERS = {"median_queries": "median queries (fooled)", "mean_queries": "mean queries (fooled)",
                 "median_queries_all": "median queries (all n)", "mean_queries_all": "mean queries (all n)",
                 "median_queries_correct": "median queries (fooled, n_correct)",
                 "mean_queries_correct": "mean queries (fooled, n_correct)"}


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


def _overview(results):
    baseline = results.baseline
    rows = []
    for v in results.variants:
        base_at_layer = baseline.sparsity.get(v.layer) if baseline and not v.is_baseline else None
        notes = [f"collapsed (seed {', '.join(map(str, v.collapsed_seeds))})"] if v.collapsed_seeds else []
        notes += [f"failed check {name}" for name in v.failed_checks]
        rows.append([v.label, _seeds(v.seeds), _counts(v.n_test), _percent(v.clean_acc), _percent(v.own_sparsity),
                     _percent(base_at_layer) if not v.is_baseline else DASH, "; ".join(notes)])
    return _table(["variant", "seeds", "n_test", "clean acc (%)", "sparsity of regularised layer (%)",
                   "standard's sparsity at that layer (%)", "notes"], rows)


def _attack_section(results, key):
    nes = nes_attack(key) is not None
    have = [v for v in results.variants if key in v.attacks]
    query_fields = [f for f in QUERY_FIELDS if any(f in v.attacks[key].fields for v in have)] if nes else []
    header = ["variant", "seeds", "n", "n_correct", "success, all n (%)", "success, n_correct (%)",
              "robust acc, all n (%)"] + [QUERY_HEADERS[f] for f in query_fields]
    rows = []
    for v in have:
        run = v.attacks[key]
        rows.append([v.label, _seeds(run.seeds), _counts(run.n), _counts(run.n_correct),
                     _percent(run.get("success_rate_all")), _percent(run.get("success_rate_correct")),
                     _percent(run.get("robust_acc"))]
                    + [_queries(run.get(f)) for f in query_fields])
    lines = [f"## {attack_title(key)}", ""]
    if nes:
        lines += ["Queries: model evaluations per sample; median/mean queries are over the samples the attack fooled "
                  "(— when none), the *(all n)* columns over every attacked sample "
                  "(a sample not fooled counts the queries it used).", ""]
    lines += _table(header, rows)
    lacking = [v.label for v in results.variants if key not in v.attacks]
    if lacking:
        lines += ["", f"Not evaluated with this attack: {', '.join(lacking)}."]
    return lines + [""]


def _sparsity_table(results):
    layers = [layer for layer in LAYER_NAMES if any(layer in v.sparsity for v in results.variants)]
    rows = [[v.label] + [_percent(v.sparsity.get(layer)) for layer in layers] for v in results.variants]
    return _table(["variant"] + [f"{layer} (%)" for layer in layers], rows)


def summary_markdown(results, notes=()):
    """The markdown text of ``summary.md`` (deterministic: no dates, paths relative to the results folder)."""
    seeds = results.seeds
    lines = [
        f"# Results: {METHOD_NAME[results.method]} at one layer (`{results.method}`)",
        "",
        f"{results.file_count} result file{'s' if results.file_count != 1 else ''} from `{results.folder.name}/`, seeds {', '.join(map(str, seeds))}. "
        "Values are mean ± sample standard deviation over the seeds listed per row (no ± with one seed). "
        "Rates are percentages of the stated denominator: *all n* = every attacked sample (already misclassified "
        "ones count as successes for untargeted attacks), *n_correct* = those the model classified correctly "
        "before the attack. Where seeds differ in n, n_correct or n_test, the value of each seed is listed "
        "in seed order.",
        "",
        "## Clean accuracy and sparsity of the regularised layer",
        "",
        "Sparsity = fraction of exact zeros in the layer's output activation on the test set.",
        "",
    ]
    lines += _overview(results) + [""]
    for key in results.attacks:
        lines += _attack_section(results, key)
    if not results.attacks:
        lines += ["## Attacks", "", "No attack results in these files.", ""]
    lines += ["## Activation sparsity of every layer (%)", ""] + _sparsity_table(results) + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)
