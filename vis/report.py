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
from data.registry import DEFAULT_DATASET, dataset_root
from evaluation.config import EvalConfig
from sparsity.methods import METHODS, get_method
from sparsity.variants import validate_layers
from vis.figures import (plot_eps_star_per_layer, plot_eps_star_vs_sparsity, plot_per_layer, plot_queries,
                         plot_queries_by_method, plot_robustness_curves, plot_robustness_vs_sparsity,
                         plot_strength_sweep)
from vis.eps_star import csv_text as eps_star_csv
from vis.results import load_method_results
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
    have = {r.variant.layer for r in records if not r.variant.is_baseline}
    missing = ["standard"] if include_baseline and not any(r.variant.is_baseline for r in records) else []
    return missing + [layer for layer in layers or () if layer not in have]


def make_figures(results_dir, method, layers=None, include_baseline=True, dataset=None):
    """Write the figures and summary of ``results_dir/method``; returns the written paths.

    ``results_dir`` is one data set's results folder; a result file of another data set than ``dataset``
    (None: than the folder's first) is a FileProblem naming it.

    ``layers`` (None: every layer with results) and ``include_baseline`` filter what
    is shown. Requested layers (or the baseline) without any result file are named
    in one warning; no result at all, or a file that is not a valid result file,
    raises FileProblem; those messages name the eval command that produces the missing results.
    """

    def how_to_make(layers):
        name = dataset or DEFAULT_DATASET
        return "run " + EvalConfig.from_options(dataset=name).command(
            dataset=name, method=method, layers=layers, results_dir=dataset_root(results_dir, name))

    get_method(method)
    layers = None if layers is None else validate_layers(layers)
    results_dir = Path(results_dir)
    records, results = load_method_results(results_dir, method, layers, include_baseline, _warn, dataset)
    if not records:
        raise FileProblem(f"no results for {method} in {results_dir / method}; {how_to_make(layers)}", "results_dir")
    notes = []
    missing = missing_requests(records, layers, include_baseline)
    if missing:
        missing_layers = [m for m in missing if m in (layers or ())] or layers
        message = (f"no results in {results_dir / method} for requested {', '.join(missing)}; not plotted — "
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
        if other != method and (results_dir / other).is_dir():
            other_records, other_results = load_method_results(results_dir, other, layers, include_baseline, _warn,
                                                               dataset or results.dataset_name)
            if other_records:
                others[other] = other_results
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
