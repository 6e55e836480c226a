"""The summary of a results folder, from its records: ``summary.csv`` (one row per record) and the plain-text table
an evaluation ends with."""
import csv
import io

from evaluation.minimal import NORMS

IDENTITY_COLUMNS = ("dataset", "architecture", "name", "method", "layer", "strength", "training", "seed", "learned",
                    "clean_acc", "n_test", "worst_case_robust_acc", "worst_case_n", "worst_case_all_attacks_robust_acc",
                    "worst_case_all_attacks_n", "worst_case_attacks")
ATTACK_COLUMNS = ("n", "n_correct", "success_rate_all", "success_rate_correct", "robust_acc")
QUERY_COLUMNS = ("median_queries", "mean_queries", "median_queries_all", "mean_queries_all")

def attack_keys(records):
    """Every attack key in the records, in the order eval ran them (first appearance)."""
    return list(dict.fromkeys(key for record in records for key in record.attacks))


def summary_columns(records):
    """Identity, sparsity per layer, then per attack its rates (and query statistics), then checks."""
    layers = dict.fromkeys(layer for record in records for layer in record.layer_names)
    columns = list(IDENTITY_COLUMNS) + [f"sparsity_{layer}" for layer in layers]
    for key in attack_keys(records):
        columns += [f"{key}_{metric}" for metric in ATTACK_COLUMNS]
        if any(key in record.attacks and record.attacks[key].counts_queries for record in records):
            columns += [f"{key}_{metric}" for metric in QUERY_COLUMNS]
    for norm in NORMS:
        if any(norm in record.minimal for record in records):
            columns += [f"eps_star_{norm}_{metric}" for metric in MINIMAL_COLUMNS]
    return columns + ["checks_failed", "checks_not_run"]


# per norm: the median eps* (empty when censored), its interval (empty high: past the limit), the counts
MINIMAL_COLUMNS = ("median", "low", "high", "limit", "n", "n_censored", "n_clean_misclassified", "fab_median",
                   "pgd_median")


def minimal_row(norm, entry):
    values = {"median": entry.median, "low": entry.interval.low, "high": entry.interval.high, "limit": entry.limit,
              "n": entry.n, "n_censored": entry.n_censored, "n_clean_misclassified": entry.n_clean_misclassified,
              "fab_median": entry.fab.median, "pgd_median": entry.pgd.median}
    return {f"eps_star_{norm}_{metric}": values[metric] for metric in MINIMAL_COLUMNS}


def worst_case_columns(worst):
    if worst is None:
        return {column: None for column in IDENTITY_COLUMNS if column.startswith("worst_case")}
    return {"worst_case_robust_acc": worst.robust_acc, "worst_case_n": worst.n,
            "worst_case_all_attacks_robust_acc": worst.all_attacks_robust_acc,
            "worst_case_all_attacks_n": worst.all_attacks_n, "worst_case_attacks": " ".join(worst.attacks) or None}


def summary_row(record):
    spec = record.spec
    row = {"dataset": spec.dataset, "architecture": spec.model, "name": spec.name, "method": spec.method,
           "layer": spec.layer, "strength": spec.strength, "training": spec.training, "seed": spec.seed,
           "learned": record.learned,
           "clean_acc": record.clean_acc, "n_test": record.n_test, **worst_case_columns(record.worst_case)}
    row.update({f"sparsity_{layer}": fraction for layer, fraction in record.sparsity.items()})
    for key, entry in record.attacks.items():
        row.update({f"{key}_{metric}": value for metric, value in entry.numbers().items()})
    for norm, entry in record.minimal.items():
        row.update(minimal_row(norm, entry))
    row["checks_failed"] = " ".join(record.failed_checks)
    row["checks_not_run"] = " ".join(check.name for check in record.checks if check.status == "not_run")
    return row


def summary_csv(records):
    """``summary.csv``'s text: one row per record, in the records' order."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=summary_columns(records), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: "" if value is None else value for key, value in summary_row(record).items()})
    return buffer.getvalue()


def _cell(value, digits=3):
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_summary_table(records):
    """Plain-text table for the end of a run: clean accuracy, the per-image worst case, robust accuracy under each
    attack, the checks (every other number is in summary.csv and summary.md)."""
    keys = attack_keys(records)
    header = ["model", "clean", "worst case"] + keys + ["checks"]
    rows = []
    for record in records:
        row = [record.spec.name + ("" if record.learned is not False else " (did not learn)"),
               _cell(record.clean_acc), _cell(record.worst_case.robust_acc if record.worst_case else None)]
        row += [_cell(record.attacks[key].robust_acc if key in record.attacks else None) for key in keys]
        row.append("FAILED: " + ",".join(record.failed_checks) if record.failed_checks else "ok")
        rows.append(row)
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return ("robust accuracy over all n: worst case per image over every attack, then under each attack:\n"
            + "\n".join(lines))
