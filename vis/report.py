"""Entry point of ``main.py --mode vis``: read one method's results, write its figures and summary table.

Files written in one data set's results folder (``results/{dataset}/``; each figure as .png at 150 dpi and .pdf):

- ``{method}/fig1_per_layer``               clean and robust accuracy, success over correct images, per layer
- ``{method}/fig2_strength_sweep``          metrics against strength (layers with 2+ strengths)
- ``{method}/fig3_queries``                 query-based attacks: median queries over fooled & correct images
- ``{method}/fig4_robustness_vs_sparsity``  robust accuracy against measured sparsity of the regularised layer
- ``{method}/fig5_robustness_curves``       robust accuracy against eps read off eps* (and --eps-sweep points)
- ``{method}/fig6_eps_star_per_layer``      median eps* with intervals per layer, paired difference to standard
- ``{method}/fig7_eps_star_vs_sparsity``    dose-response: each model's median eps* against its layer's sparsity
- ``{method}/eps_star.csv``                 median eps* per variant and norm, interval, paired difference
- ``{method}/summary.md``                   every number as markdown tables
- ``fig3_queries_by_method``                figure 3 of every method side by side (when several have results)
"""
import logging
from pathlib import Path

from common.errors import FileProblem
from common.io import atomic_write_text, ensure_writable_dir
from evaluation.config import EvalConfig
from sparsity.methods import METHODS, get_method
from vis.figures import (plot_eps_star_per_layer, plot_eps_star_vs_sparsity, plot_per_layer, plot_queries,
                         plot_queries_by_method, plot_robustness_curves, plot_robustness_vs_sparsity,
                         plot_strength_sweep)
from vis.eps_star import csv_text as eps_star_csv
from records.store import ResultStore
from vis.results import merge_seeds
from vis.summary_table import summary_markdown

logger = logging.getLogger(__name__)

COMPARISON_STEM = "fig3_queries_by_method"
EPS_STAR_CSV = "eps_star.csv"
METHOD_FIGURES = (
    ("fig1_per_layer", plot_per_layer, "no variant to show"),
    ("fig2_strength_sweep", plot_strength_sweep, "no layer was evaluated at two or more strengths"),
    ("fig3_queries", plot_queries, "no query-based attack results"),
    ("fig4_robustness_vs_sparsity", plot_robustness_vs_sparsity,
     "no regularised variant with both measured sparsity and attack results"),
    ("fig5_robustness_curves", plot_robustness_curves,
     "no eps* and no --eps-sweep curve (evaluate with --minimal-norms linf or --eps-sweep)"),
    ("fig6_eps_star_per_layer", plot_eps_star_per_layer, "no eps* (evaluate with --minimal-norms linf l2)"),
    ("fig7_eps_star_vs_sparsity", plot_eps_star_vs_sparsity, "no L-inf eps* of a regularised variant"),
)


def _warn(message):
    logger.warning("warning: %s", message)


def missing_requests(records, layers, include_baseline):
    """Names of requested variants (the baseline, each requested layer) without a single result file."""
    have = {r.spec.layer for r in records if not r.spec.is_baseline}
    missing = ["standard"] if include_baseline and not any(r.spec.is_baseline for r in records) else []
    return missing + [layer for layer in layers or () if layer not in have]


def method_records(results_root, dataset, method, layers=None, include_baseline=True):
    """The records of ``method``'s models of standard training in the store at ``results_root`` (``layers``: those
    at these layers; None: all), with the standard baseline's; one architecture (the first found)."""
    def wanted(spec):
        if spec.adv is not None:
            return False
        return include_baseline if spec.is_baseline else spec.method == method and (layers is None or
                                                                                    spec.layer in layers)
    records = ResultStore(results_root, _warn).records(dataset, wanted)
    return [r for r in records if r.spec.model == records[0].spec.model]


def make_figures(results_root, dataset, method, layers=None, include_baseline=True):
    """Write the figures and summary of ``method``'s models in the store at ``results_root`` into
    ``{results_root}/{dataset}/{model}/{method}/``; returns the written paths.

    ``layers`` (None: every layer with results) and ``include_baseline`` filter what
    is shown. Requested layers (or the baseline) without any result file are named
    in one warning; no result at all raises FileProblem naming the eval command that produces the missing results.
    """

    def how_to_make(layers):
        return "run " + EvalConfig.from_options(dataset=dataset).command(
            dataset=dataset, method=method, layers=layers, results_dir=results_root)

    get_method(method)
    records = method_records(results_root, dataset, method, layers, include_baseline)
    if not records:
        raise FileProblem(f"no results for {method} in {Path(results_root) / dataset}; {how_to_make(layers)}",
                          "results_dir")
    results_dir = records[0].spec.folder(results_root)
    results = merge_seeds(method, results_dir / method, records)
    notes = []
    missing = missing_requests(records, layers, include_baseline)
    if missing:
        missing_layers = [m for m in missing if m in (layers or ())] or layers
        message = (f"no results in {results_dir} for requested {', '.join(missing)}; not plotted — "
                   f"{how_to_make(missing_layers)}")
        _warn(message)
        notes.append(message[0].upper() + message[1:] + ".")

    out_dir = ensure_writable_dir(results_dir / method, "results_dir")
    written = []
    for stem, plot, reason in METHOD_FIGURES:
        paths = plot(results, out_dir / stem)
        if not paths:
            earlier = (out_dir / f"{stem}.png").exists()
            notes.append(f"{stem} not drawn in this run ({reason})"
                         + (f"; the {stem} file in this folder is from an earlier run." if earlier else "."))
        written += paths

    others = {}
    for other in METHODS:
        other_records = [] if other == method else [r for r in method_records(results_root, dataset, other, layers,
                                                                                include_baseline)
                                                    if not r.spec.is_baseline]
        if other_records:
            others[other] = merge_seeds(other, results_dir / other, other_records + [
                r for r in records if r.spec.is_baseline])
    if others:
        ordered = [results if name == method else others[name] for name in METHODS if name == method or name in others]
        written += plot_queries_by_method(ordered, results_dir / COMPARISON_STEM)

    if any(v.eps_star for v in results.variants):
        table = out_dir / EPS_STAR_CSV
        atomic_write_text(table, eps_star_csv(results), location="results_dir")
        written.append(table)
    summary = out_dir / "summary.md"
    atomic_write_text(summary, summary_markdown(results, records, notes), location="results_dir")
    return written + [summary]
