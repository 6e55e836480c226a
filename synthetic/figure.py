"""The synthetic experiment's figure: minimal flipping perturbations and sparsity against the strength."""
import math

from sparsity.methods import METHODS
from synthetic.records import FLIP_MEASURES
from synthetic.table import baseline_text, convergence_text
from vis.render import add_footnote, figure_style, new_figure, save_figure

OFFSETS = (-0.12, 0.0, 0.12)  # measures side by side at each strength


def plot_results(results, stem):
    """``stem.png`` and ``stem.pdf`` (returns their paths): the flip measures and the hidden layer's sparsity
    against strength, placed evenly as the strengths include 0."""
    config, rows = results["config"], results["strengths"]
    with figure_style():
        fig = new_figure(11, 6)
        flip_axis, sparsity_axis = fig.subplots(1, 2)
        _draw_flips(flip_axis, rows, results["scales"])
        _draw_sparsity(sparsity_axis, rows, config["width"])
        method = METHODS[config["mode"]]
        penalty = f", {config['penalty']} penalty" if config["penalty"] else ""
        flip_axis.set_title(f"{method.title}: d={config['d']}, m={config['m']}, width={config['width']}"
                            f"{penalty}, {config['optimizer']}")
        for axis in (flip_axis, sparsity_axis):
            axis.set_xticks(range(len(rows)), [f"{row['strength']:g}" for row in rows])
            axis.set_xlabel(method.strength_label)
        add_footnote(fig, [
            convergence_text(results) + ".",
            "Filled: mean ± sample std (n-1) over seeds. Open: median over seeds where k of n seeds found no flip "
            "within the search limit (k/n written beside); on the limit line with an arrow: the median is beyond it.",
            baseline_text(results) + ".",
        ])
        return save_figure(fig, stem)


def _draw_flips(axis, rows, scales):
    limit = scales["flip_search_limit"]
    for color, offset, (key, label) in zip(("C0", "C1", "C2"), OFFSETS, FLIP_MEASURES):
        for position, row in enumerate(rows):
            if row[key]["censored"]:
                _draw_censored(axis, position + offset, row[key], limit, color)
        means, errors = _means_and_errors([row[key] for row in rows])
        axis.errorbar([p + offset for p in range(len(rows))], means, yerr=errors, color=color, marker="o",
                      markersize=4, capsize=3, label=label)
    axis.axhline(scales["sqrt_d"], color="black", linestyle="--", label=f"sqrt(d) = {scales['sqrt_d']:.3g} (data norm)")
    axis.axhline(scales["theory_scale"], color="grey", linestyle=":",
                 label=f"sqrt(d/m) = {scales['theory_scale']:.3g} (theory's scale)")
    axis.axhline(limit, color="0.5", linestyle="-.", linewidth=0.8, label=f"search limit {limit:.3g}")
    axis.set_yscale("log")
    axis.set_ylim(top=limit * 2.5)  # room for the arrows of censored medians above the limit line
    axis.set_ylabel("minimal flipping perturbation (l2 norm)")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)


def _draw_censored(axis, x, statistic, limit, color):
    """An open marker at the median over seeds, or at the limit with an upward arrow if the median is
    censored too, and the count of censored seeds."""
    y = statistic["median"] if statistic["median"] is not None else limit
    axis.plot([x], [y], marker="o", markersize=6, markerfacecolor="white", markeredgecolor=color, linestyle="none")
    if statistic["median"] is None:
        axis.annotate("", xy=(x, y * 1.6), xytext=(x, y), arrowprops={"arrowstyle": "->", "color": color})
    axis.annotate(f"{statistic['censored']}/{statistic['n']}", (x, y), textcoords="offset points", xytext=(4, -10),
                  fontsize=6.5, color=color)


def _draw_sparsity(axis, rows, width):
    positions = range(len(rows))
    for key, label, scale in (("dead_units", "dead units / width", width),
                              ("activation_sparsity", "zero activations (fraction)", 1)):
        means, errors = _means_and_errors([row[key] for row in rows], scale)
        axis.errorbar(positions, means, yerr=errors, marker="o", markersize=4, capsize=3, label=label)
    axis.set_ylim(0, 1.02)
    axis.set_ylabel("fraction, on the training points")
    axis.set_title("hidden layer sparsity")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)


def _means_and_errors(statistics, scale=1):
    """Error bars of ``seed_statistics`` records over ``scale``; nan (nothing drawn) where they give no mean."""
    means = [math.nan if statistic["mean"] is None else statistic["mean"] / scale for statistic in statistics]
    return means, [(statistic["std"] or 0.0) / scale for statistic in statistics]
