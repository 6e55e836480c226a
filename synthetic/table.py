"""The plain-text summary of a results document: one row per strength, and how to read it."""
from synthetic.records import BASELINE_MEASURES, FLIP_MEASURES
from synthetic.trainer import CONVERGED


def statistic_text(statistic, limit=None, digits=3):
    """A ``seed_statistics`` record as text: ``mean ± std``; with censored seeds ``median (k/n >= limit)``,
    or ``>= limit (k/n)`` when the median itself is censored; ``-`` without values."""
    if statistic["n"] == 0:
        return "-"
    if statistic["censored"]:
        count = f"{statistic['censored']}/{statistic['n']}"
        if statistic["median"] is None:
            return f">= {limit:.{digits}g} ({count})"
        return f"{statistic['median']:.{digits}g} ({count} >= {limit:.{digits}g})"
    if statistic["std"] is None:
        return f"{statistic['mean']:.{digits}g}"
    return f"{statistic['mean']:.{digits}g} ± {statistic['std']:.2g}"


def baseline_text(results):
    """The unregularised runs' median-point flips in units of the theory's scale sqrt(d/m), as is the search limit."""
    baseline, scales = results["baseline"], results["scales"]
    limit = scales["flip_search_limit"] / scales["theory_scale"]
    parts = [f"{statistic_text(baseline[f'{key}_over_theory_scale'], limit)} ({label})"
             for key, label in BASELINE_MEASURES]
    return f"unregularised median-point flip / sqrt(d/m): {', '.join(parts)}"


def convergence_text(results):
    config = results["config"]
    total = sum(row["runs"] for row in results["strengths"])
    converged = sum(row["converged"] for row in results["strengths"])
    return (f"{converged}/{total} runs reached data loss < {config['loss_target']:g} within {config['steps']} "
            f"steps (converged); only those enter the statistics")


def summary_table(results):
    limit = results["scales"]["flip_search_limit"]
    header = ("strength", "converged", "others stopped", "steps", "dead units", "sparsity",
              *(label for _, label in FLIP_MEASURES))
    rows = []
    for row in results["strengths"]:
        others = ", ".join(f"{reason} {count}" for reason, count in row["stop_reasons"].items() if reason != CONVERGED)
        rows.append((f"{row['strength']:g}", f"{row['converged']}/{row['runs']}", others or "-",
                     statistic_text(row["steps"], digits=4), statistic_text(row["dead_units"]),
                     statistic_text(row["activation_sparsity"]),
                     *(statistic_text(row[key], limit) for key, _ in FLIP_MEASURES)))
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in (header, *rows)]
    scales = results["scales"]
    lines += [
        convergence_text(results),
        "over seeds: mean ± sample std (n-1); where k of n seeds found no flip within the search limit, "
        "the median over seeds and k/n (no mean over the seeds that flipped)",
        f"flips are l2 norms; sqrt(d) = {scales['sqrt_d']:.4g} (data norm), sqrt(d/m) = "
        f"{scales['theory_scale']:.4g} (theory's scale), search limit {limit:.4g}",
        baseline_text(results),
    ]
    return "\n".join(lines)
