"""Entry point of ``main.py --mode vis``: one method's records beside the standard baseline's, grouped into arms once,
drawn and tabulated per model (seed) into ``{results_root}/{dataset}/{model}/`` (the files: docs/usage.md)."""
import logging
from pathlib import Path

from common.errors import FileProblem
from common.io import atomic_write_text, ensure_writable_dir
from evaluation.config import EvalConfig
from records.store import ResultStore
from sparsity.methods import METHODS, get_method
from vis import curves, figures
from vis.summary import CSV_NAME, seeds_csv, summary_markdown

logger = logging.getLogger(__name__)

METHOD_FIGURES = (
    ("fig1_per_layer", figures.plot_per_layer, "no arm to show"),
    ("fig2_strength_sweep", curves.plot_strength_sweep, "no layer was evaluated at two or more strengths"),
    ("fig3_queries", figures.plot_queries, "no query-based attack results"),
    ("fig4_robustness_vs_sparsity", curves.plot_robustness_vs_sparsity,
     "no regularised arm with both measured sparsity and attack results"),
    ("fig5_robustness_curves", curves.plot_robustness_curves,
     "no eps* and no --eps-sweep curve (evaluate with --minimal-norms linf or --eps-sweep)"),
    ("fig6_eps_star_per_layer", figures.plot_eps_star_per_layer, "no eps* (evaluate with --minimal-norms linf l2)"),
    ("fig7_eps_star_vs_sparsity", figures.plot_eps_star_vs_sparsity, "no L-inf eps* of a regularised arm"),
)


def _warn(message):
    logger.warning("warning: %s", message)


def selected(records, method, layers=None, include_baseline=True):
    """``method``'s records of standard training (at ``layers``; None: all), and the standard baseline's."""
    def wanted(spec):
        if spec.adv is not None or spec.is_baseline:
            return spec.adv is None and include_baseline
        return spec.method == method and (layers is None or spec.layer in layers)
    return [record for record in records if wanted(record.spec)]


def make_figures(results_root, dataset, method, layers=None, include_baseline=True):
    """Write ``method``'s figures, summary and per-seed eps* table; returns the paths. Requested layers (or baseline)
    without results are named in one warning; no result at all is a FileProblem naming the eval command to run."""
    def how_to_make(layers):
        return "run " + EvalConfig.from_options(dataset=dataset).command(
            dataset=dataset, method=method, layers=layers, results_dir=results_root)

    get_method(method)
    everything = ResultStore(results_root, _warn).records(dataset)
    records = selected(everything, method, layers, include_baseline)
    if not records:
        raise FileProblem(f"no results for {method} in {Path(results_root) / dataset}; {how_to_make(layers)}",
                          "results_dir")
    model, folder = records[0].spec.model, records[0].spec.folder(results_root)  # one architecture: the first found
    everything = [r for r in everything if r.spec.model == model]
    records = [r for r in records if r.spec.model == model]
    notes = []
    have = {r.spec.layer for r in records if not r.spec.is_baseline}
    missing = (["standard"] if include_baseline and not any(r.spec.is_baseline for r in records) else []) + [
        layer for layer in layers or () if layer not in have]
    if missing:
        message = (f"no results in {folder} for requested {', '.join(missing)}; not plotted — "
                   f"{how_to_make([m for m in missing if m in (layers or ())] or layers)}")
        _warn(message)
        notes.append(message[0].upper() + message[1:] + ".")

    results = figures.MethodArms.of(method, records)
    out_dir = ensure_writable_dir(folder / method, "results_dir")
    written = []
    for stem, plot, reason in METHOD_FIGURES:
        paths = plot(results, out_dir / stem)
        if not paths:
            earlier = (out_dir / f"{stem}.png").exists()
            notes.append(f"{stem} not drawn in this run ({reason})"
                         + (f"; the {stem} file in this folder is from an earlier run." if earlier else "."))
        written += paths

    baseline, by_method = [r for r in records if r.spec.is_baseline], []
    for other in METHODS:
        found = [] if other == method else selected(everything, other, layers, include_baseline=False)
        if other == method or found:
            by_method.append(results if other == method else figures.MethodArms.of(other, found + baseline))
    written += figures.plot_queries_by_method(by_method, folder / "fig3_queries_by_method")

    if any(r.minimal for r in records):
        atomic_write_text(out_dir / CSV_NAME, seeds_csv(records), location="results_dir")
        written.append(out_dir / CSV_NAME)
    atomic_write_text(out_dir / "summary.md", summary_markdown(results, records, notes), location="results_dir")
    return written + [out_dir / "summary.md"]
