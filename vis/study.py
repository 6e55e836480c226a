"""A study's tables across methods, read from its result files: what the README's Results section shows.

One results folder per method (``{results_dir}/{dataset}/{method}/``, as ``main.py --mode eval`` writes them);
the baseline is shared (each folder holds the same copy), so it is one row. Every number is read from the
records through ``vis.results``; nothing here is typed by hand (``python experiments/fashion_mnist.py
--tables`` prints them for the README, and ``tests/test_study_table.py`` checks that the README holds exactly that).
"""
from common import stats
from sparsity.methods import METHODS, get_method
from vis.eps_star import eps_text
from vis.summary_table import DASH, interval_text, markdown_table, paired_text, percent_text
from vis.results import load_method_results

EPS_STAR_NORM = "linf"
WORST_CASE_NOTE = "worst case over every attack run and eps*"


def load_study(results_dir, dataset, methods=None):
    """``[MethodResults]`` of each method with a results folder under ``results_dir/dataset``."""
    folder = results_dir / dataset
    return [load_method_results(folder, method, None, include_baseline=True, dataset=dataset)[1]
            for method in (methods or METHODS) if (folder / method).is_dir()]


def _percent(value):
    return DASH if value is None else f"{100 * value:.1f}"


def robust_count(summary):
    """``(k, n)`` of an AttackSummary pooled over its seeds: images still correctly classified after the attack,
    of all images it attacked."""
    return sum(summary.n_robust), sum(summary.n)


def _proportion(k, n):
    low, high = stats.wilson_interval(k, n)
    return f"{k}/{n} = {_percent(k / n)} [{_percent(low)}, {_percent(high)}]" if n else DASH


def _eps_star(dataset, summary, baseline):
    if summary is None:
        return DASH
    interval = interval_text(dataset, summary.low, summary.high, EPS_STAR_NORM, summary.limit)
    return (f"{eps_text(dataset, summary.median, EPS_STAR_NORM)} {interval} (n = {summary.n})"
            + ("; outside standard's interval" if outside_baseline(summary, baseline) else ""))


def seed_medians(dataset, variant):
    """Each seed's own median eps* (L-inf), in seed order: how far the seeds agree, which the pooled interval
    (over images) does not show."""
    entries = variant.minimal.get(EPS_STAR_NORM)
    return DASH if not entries else " / ".join(eps_text(dataset, entry["median"], EPS_STAR_NORM)
                                                for _, entry in entries)


def _paired(dataset, summary):
    return DASH if summary is None else paired_text(dataset, summary, EPS_STAR_NORM)


def outside_baseline(summary, baseline):
    """Whether a variant's median eps* (``vis.eps_star.EpsStar``) lies outside the 95% interval of the baseline's
    median (its seeds pooled): the study's rule for giving a variant more seeds, and the tables' mark. The
    interval is over images; between seeds the baseline's median moves more than that (README > Results), which
    is why a difference on one seed is never read as a finding."""
    if summary is None or baseline is None or summary is baseline:
        return False
    return summary.median < baseline.low or summary.median > baseline.high


def _queries(summary):
    median = summary.get("median_queries_correct").mean
    return DASH if median is None else f"{median:.0f}"


def _variant_cells(results, variant):
    method = get_method(results.method) if not variant.is_baseline else None
    strength = method.strength_text(variant.strength) if method else DASH
    return [variant.method, variant.layer or DASH, strength, ", ".join(map(str, variant.seeds))]


def _rows(studies):
    """``(results, variant)`` per row: the baseline once (from the first method), then each method's variants."""
    rows = []
    for index, results in enumerate(studies):
        rows += [(results, v) for v in results.variants if not v.is_baseline or index == 0]
    return rows


def _notes(variant):
    notes = []
    if not variant.learned:
        notes.append("DID NOT LEARN")
    elif variant.not_learned_seeds:
        notes.append(f"seed {', '.join(map(str, variant.not_learned_seeds))} did not learn")
    if variant.collapsed_seeds:
        notes.append("collapsed")
    return notes


def accuracy_table(studies):
    """Clean accuracy, sparsity, eps* and AutoAttack per variant."""
    header = ["method", "layer", "strength", "seeds", "clean acc (%)", "zeros at the layer (%): variant / standard",
              "median eps* L-inf [95% CI] (n)", "median eps* per seed", "paired difference to standard [95% CI]",
              "AutoAttack robust: k/n = % [95% CI]", f"{WORST_CASE_NOTE} (%)", "notes"]
    baseline = studies[0].baseline if studies else None
    base_eps_star = baseline.eps_star.get(EPS_STAR_NORM) if baseline else None
    rows = []
    for results, variant in _rows(studies):
        summary = variant.eps_star.get(EPS_STAR_NORM)
        aa = variant.attacks.get("autoattack")
        zeros = DASH
        if not variant.is_baseline:
            base = baseline.sparsity.get(variant.layer) if baseline else None
            zeros = f"{percent_text(variant.own_sparsity)} / {percent_text(base)}"
        rows.append(_variant_cells(results, variant) + [
            percent_text(variant.clean_acc), zeros, _eps_star(results.dataset, summary, base_eps_star),
            seed_medians(results.dataset, variant),
            DASH if variant.is_baseline else _paired(results.dataset, summary),
            _proportion(*robust_count(aa)) if aa else DASH, percent_text(variant.worst_case),
            "; ".join(_notes(variant))])
    return markdown_table(header, rows)


def black_box_table(studies):
    """Each query-based attack's robust accuracy and median queries, and the checks that failed."""
    keys = list(dict.fromkeys(key for results in studies for key in results.attacks_where(counts_queries=True)))
    titles = {key: info.title for results in studies for key, info in results.attack_info.items()}
    header = (["method", "layer", "strength", "seeds"]
              + [f"{titles[key]}: robust k/n (median queries)" for key in keys] + ["failed checks"])
    rows = []
    for results, variant in _rows(studies):
        cells = []
        for key in keys:
            summary = variant.attacks.get(key)
            if summary is None:
                cells.append(DASH)
                continue
            k, n = robust_count(summary)
            cells.append(f"{k}/{n} ({_queries(summary)})")
        rows.append(_variant_cells(results, variant) + cells + ["; ".join(variant.failed_checks) or "none"])
    return markdown_table(header, rows)


def study_markdown(studies):
    """The README's study tables (deterministic: the same files give the same text)."""
    return "\n".join(accuracy_table(studies) + [""] + black_box_table(studies)) + "\n"
