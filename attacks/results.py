"""Result files: one JSON per variant, a summary.csv rebuilt from all of them, a printable table.

Every variant's JSON is written on its own (atomically), and summary.csv is
always regenerated from whatever JSON files exist, so evaluations run as
separate processes merge instead of overwriting each other.
"""
import csv
import io
import json
from pathlib import Path

from common.errors import UsageError
from common.io import atomic_write_json, atomic_write_text
from models.simple_cnn import LAYER_NAMES

SCHEMA_VERSION = 1
SUMMARY_NAME = "summary.csv"
ATTACK_ORDER = ("pgd", "nes_untargeted_m0", "nes_untargeted_m0.9", "nes_targeted_m0", "nes_targeted_m0.9")
ATTACK_COLUMNS = ("n", "n_correct", "success_rate_all", "success_rate_correct", "robust_acc")
QUERY_COLUMNS = ("median_queries", "mean_queries", "median_queries_all", "mean_queries_all")
IDENTITY_COLUMNS = ("variant", "method", "layer", "strength", "seed", "clean_acc", "n_test")


def write_variant_result(path, record):
    """Write one variant's record atomically (a crash never leaves a half-written file)."""
    if not isinstance(record, dict) or "variant" not in record:
        raise ValueError("a result record is a dict with at least a 'variant' entry")
    atomic_write_json(path, {"schema_version": SCHEMA_VERSION, **record})


def load_variant_result(path):
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"result file {path} is unreadable or not valid JSON ({err}); delete it and rerun "
                         f"--mode eval for that variant")
    if not isinstance(record, dict) or not isinstance(record.get("variant"), dict) or "name" not in record["variant"]:
        raise UsageError(f"result file {path} is not a variant result (no variant name); delete it and rerun "
                         f"--mode eval for that variant")
    return record


def load_method_results(method_dir):
    """Every variant record in ``results/{method}/``, in table order (baseline, then layer, strength, seed)."""
    paths = sorted(path for path in Path(method_dir).glob("*.json") if not path.name.startswith("."))
    return sorted((load_variant_result(path) for path in paths), key=_row_order)


def _row_order(record):
    variant = record["variant"]
    layer = variant.get("layer")
    layer_rank = LAYER_NAMES.index(layer) if layer in LAYER_NAMES else (-1 if layer is None else len(LAYER_NAMES))
    return (layer_rank, str(layer), variant.get("strength") or 0.0, variant.get("seed") or 0, variant["name"])


def _attack_keys(records):
    found = {key for record in records for key in record.get("attacks", {})}
    return [key for key in ATTACK_ORDER if key in found] + sorted(found - set(ATTACK_ORDER))


def summary_columns(records):
    """Column order: identity, sparsity per layer, then per attack (fixed order, extras sorted), then checks."""
    columns = list(IDENTITY_COLUMNS) + [f"sparsity_{layer}" for layer in LAYER_NAMES]
    for key in _attack_keys(records):
        columns += [f"{key}_{metric}" for metric in ATTACK_COLUMNS]
        if key.startswith("nes"):
            columns += [f"{key}_{metric}" for metric in QUERY_COLUMNS]
    return columns + ["checks_failed"]


def summary_row(record):
    variant = record["variant"]
    row = {"variant": variant["name"], "method": variant.get("method"), "layer": variant.get("layer"),
           "strength": variant.get("strength"), "seed": variant.get("seed"),
           "clean_acc": record.get("clean_acc"), "n_test": record.get("n_test")}
    for layer, fraction in (record.get("activation_sparsity") or {}).items():
        row[f"sparsity_{layer}"] = fraction
    for key, metrics in (record.get("attacks") or {}).items():
        for metric, value in metrics.items():
            row[f"{key}_{metric}"] = value
    row["checks_failed"] = " ".join(check["name"] for check in record.get("checks", []) if not check["passed"])
    return row


def rebuild_summary_csv(method_dir):
    """Rewrite ``method_dir/summary.csv`` from every variant JSON there; returns its path."""
    method_dir = Path(method_dir)
    records = load_method_results(method_dir)
    columns = summary_columns(records)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: "" if value is None else value for key, value in summary_row(record).items()})
    path = method_dir / SUMMARY_NAME
    atomic_write_text(path, buffer.getvalue())
    return path


def _cell(value, digits=3):
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_summary_table(records):
    """Plain-text table for the end of a run: clean accuracy, PGD, NES success rates and median queries."""
    keys = _attack_keys(records)
    header = ["variant", "clean"]
    for key in keys:
        header += [f"{key} rob", f"{key} succ"] + ([f"{key} medQ"] if key.startswith("nes") else [])
    header.append("checks")
    rows = []
    for record in records:
        row = [record["variant"]["name"], _cell(record.get("clean_acc"))]
        for key in keys:
            metrics = record.get("attacks", {}).get(key, {})
            row += [_cell(metrics.get("robust_acc")), _cell(metrics.get("success_rate_all"))]
            if key.startswith("nes"):
                row.append(_cell(metrics.get("median_queries"), 0))
        failed = [check["name"] for check in record.get("checks", []) if not check["passed"]]
        row.append("FAILED: " + ",".join(failed) if failed else "ok")
        rows.append(row)
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
