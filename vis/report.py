"""Entry point of ``main.py --mode vis``: read one method's results, write its figures and summary table.

Files written (each figure as .png at 150 dpi and as .pdf):

- ``results/{method}/fig1_per_layer``                 accuracy and attack success per regularised layer
- ``results/{method}/fig2_strength_sweep``            every metric against strength (layers with 2+ strengths)
- ``results/{method}/fig3_nes_queries``               NES median queries per variant, momentum 0 / 0.9
- ``results/{method}/fig4_robustness_vs_sparsity``    robustness against measured sparsity of the regularised layer
- ``results/{method}/summary.md``                     every number as markdown tables
- ``results/fig3_nes_queries_l1_vs_dropout``          figure 3 of both methods side by side (when both have NES results)
"""
import logging
from pathlib import Path

from common.errors import UsageError
from common.io import atomic_write_text, ensure_writable_dir
from models.simple_cnn import LAYER_NAMES
from sparsity.variants import METHODS, validate_layers
from vis.figures import (plot_nes_queries, plot_nes_queries_comparison, plot_per_layer,
                         plot_robustness_vs_sparsity, plot_strength_sweep)
from vis.results_io import load_result_files, merge_seeds, missing_requests, select_files
from vis.summary_table import summary_markdown

logger = logging.getLogger(__name__)

DEFAULT_RESULTS_DIR = Path("results")  # main.py's default <repo>/results, as seen from the repository root
COMPARISON_STEM = "fig3_nes_queries_l1_vs_dropout"
METHOD_FIGURES = (
    ("fig1_per_layer", plot_per_layer, "no variant to show"),
    ("fig2_strength_sweep", plot_strength_sweep, "no layer was evaluated at two or more strengths"),
    ("fig3_nes_queries", plot_nes_queries, "no NES results"),
    ("fig4_robustness_vs_sparsity", plot_robustness_vs_sparsity,
     "no regularised variant with both measured sparsity and PGD or NES results"),
)


def eval_command(method, layers, results_dir):
    """The command that produces the missing results, for messages."""
    parts = ["python main.py --mode eval"]
    if method == "dropout":
        parts.append("--dropout")
    if tuple(layers) != LAYER_NAMES:
        parts.append("--layers " + " ".join(layers))
    if Path(results_dir).resolve() != DEFAULT_RESULTS_DIR.resolve():
        parts.append(f"--results-dir {results_dir}")
    return " ".join(parts)


def _load(results_dir, method, layers, include_baseline):
    files = load_result_files(results_dir, method)
    return select_files(files, layers, include_baseline)


def make_figures(results_dir, method, layers=LAYER_NAMES, include_baseline=True):
    """Write the figures and summary of ``results_dir/method``; returns the written paths.

    ``layers``/``include_baseline`` filter what is shown. Requested layers (or the
    baseline) without any result file are named in one warning; no result at all,
    or a file that is not a valid result file, raises UsageError.
    """
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    layers = tuple(layers)
    validate_layers(layers)
    results_dir = Path(results_dir)
    files = _load(results_dir, method, layers, include_baseline)
    if not files:
        raise UsageError(f"no results for {method} in {results_dir / method}; "
                         f"run {eval_command(method, layers, results_dir)} first")
    notes = []
    missing = missing_requests(files, layers, include_baseline)
    if missing:
        message = (f"no results in {results_dir / method} for requested {', '.join(missing)}; not plotted — "
                   f"run {eval_command(method, [m for m in missing if m in LAYER_NAMES] or layers, results_dir)} "
                   "to add them")
        logger.warning("warning: %s", message)
        notes.append(message[0].upper() + message[1:] + ".")

    out_dir = ensure_writable_dir(results_dir / method, "--results-dir")
    results = merge_seeds(method, out_dir, files)
    written = []
    for stem, plot, reason in METHOD_FIGURES:
        paths = plot(results, out_dir / stem)
        if not paths:
            notes.append(f"{stem} not drawn in this run ({reason}); a {stem} file in this folder is from an earlier run.")
        written += paths

    other = next(m for m in METHODS if m != method)
    other_files = _load(results_dir, other, layers, include_baseline)
    if other_files:
        both = {method: results, other: merge_seeds(other, results_dir / other, other_files)}
        written += plot_nes_queries_comparison([both[m] for m in METHODS], results_dir / COMPARISON_STEM)

    summary = out_dir / "summary.md"
    atomic_write_text(summary, summary_markdown(results, notes))
    return written + [summary]
