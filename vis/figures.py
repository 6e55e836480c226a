"""The figures of ``main.py --mode vis``, one function per figure.

Each takes merged results (``vis.results.MethodResults``) and a file stem,
writes ``stem.png`` and ``stem.pdf`` and returns their paths, or [] when the
results hold nothing that figure could show. What to plot is decided from the
fields the results have (threat model, targeted, query counts), never from
attack names. Variants that did not learn are marked, not compared; every
figure's footnote states n, eps and the attack settings.
"""
import math

from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from attacks.base import WHITE_BOX
from analysis.arms import median_eps_star
from vis.render import eps_axis
from vis.metrics import CLEAN_ACC, OWN_SPARSITY, WORST_CASE, median_queries, robust_acc, success_correct
from vis.render import (BASELINE_COLOR, NOT_LEARNED_COLOR, add_footnote, figure_style, layer_style, new_figure,
                        save_figure)

SERIES_COLORS = ("tab:blue", "tab:red", "tab:orange", "tab:purple", "tab:green", "tab:olive", "tab:cyan",
                 "tab:brown", "tab:pink", "tab:gray")
BASELINE_LABEL = "standard (no regularisation)"
NOT_LEARNED_LABEL = "did not learn (near chance; not compared)"


# --------------------------------------------------------------------------- shared pieces

def _seeds_text(results):
    seeds = results.seeds
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"mean ± sample std over seeds {', '.join(map(str, seeds))}"


def _counts_text(values):
    values = sorted(set(values))
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def _settings_text(settings):
    def value(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{key} {value(v)}" for key, v in settings.items() if v is not None)


def footnote_lines(results, keys, extra=()):
    """What every figure states: images per attack, the attack settings, seeds, what was left out, and
    whether it is a --quick pipeline check."""
    lines = list(extra)
    lines.append(f"Data set: {results.dataset.title} (test images).")
    for key in keys:
        info = results.attack_info[key]
        ns = [n for v in results.variants if key in v.attacks for n in v.attacks[key].n]
        settings = next((v.attacks[key].settings for v in results.variants if key in v.attacks), {})
        lines.append(f"{info.title}: n = {_counts_text(ns) if ns else '-'} images per variant and seed; "
                     f"{_settings_text(settings)}.")
    if results.eval_configs:
        eps = sorted({config.get("eps") for config in results.eval_configs if config.get("eps") is not None})
        lines.append(f"eps = {', '.join(results.dataset.format_eps(e) for e in eps)} (L-inf); {_seeds_text(results)}; "
                     f"error bars: sample std over seeds where there are several.")
    not_learned = [f"{v.label} (seed {', '.join(map(str, v.not_learned_seeds))})"
                   for v in results.variants if v.not_learned_seeds]
    if not_learned:
        lines.append("Did not learn (clean accuracy near chance), left out of every value: "
                     + "; ".join(not_learned) + ".")
    if results.quick:
        lines.append("--quick: a pipeline check on few images with short training and attacks, not a finding.")
    return lines


def _tick_label(variant):
    if variant.is_baseline:
        return "standard"
    return f"{variant.layer}\n{variant.label.split('(')[1].rstrip(')')}"


def _strength_choice_text(results, shown):
    method = results.sparsity_method
    default = method.default_strength
    if all(v.strength == default for v in shown if not v.is_baseline):
        return f"default strength {method.strength_text(default)} at every layer"
    return (f"strength under each layer: the default {method.strength_text(default)} where evaluated, "
            "else the evaluated one closest to it")


def _shown_variants(results):
    """Figures 1 and 3 show the baseline and one strength per layer; figure 2 has the sweeps."""
    return ([results.baseline] if results.baseline else []) + results.one_per_layer()


def _value_text(metric, value):
    return f"{value:.1f}" if metric.percent else f"{value:.0f}"


def attack_palette(*all_results):
    """One colour per attack key, the same in every figure of these results; clean accuracy in grey, the
    worst case over every attack in black."""
    keys = dict.fromkeys(key for results in all_results for key in results.attack_info)
    return {CLEAN_ACC.series: "0.45", WORST_CASE.series: "black",
            **{key: SERIES_COLORS[i % len(SERIES_COLORS)] for i, key in enumerate(keys)}}


def _grouped_bars(ax, palette, variants, metrics, labels=None, annotations=None):
    """One group of bars per variant, one bar per metric, value on top; a note where a variant lacks the value
    or did not learn. ``annotations(metric, variant)`` may return extra text for a bar's label. Labels are
    written vertically when a group holds more than three bars or carries annotations, so that neighbouring
    labels never overlap. Returns one legend handle per metric."""
    labels = labels or [metric.title for metric in metrics]
    vertical = annotations is not None or len(metrics) > 3
    width = 0.8 / len(metrics)
    for x, variant in enumerate(variants):
        if not variant.learned:
            ax.text(x, 0.01, " did not learn", rotation=90, ha="center", va="bottom", fontsize=7,
                    color=NOT_LEARNED_COLOR, transform=ax.get_xaxis_transform())
    for i, (metric, label) in enumerate(zip(metrics, labels)):
        offset = (i - (len(metrics) - 1) / 2) * width
        xs, heights, errors, texts = [], [], [], []
        for x, variant in enumerate(variants):
            if not variant.learned:
                continue
            stat = metric.stat(variant)
            if stat.mean is None:
                note = "not run" if metric.attack and metric.attack not in variant.attacks else "none fooled"
                ax.text(x + offset, 0.01, f" {note}", rotation=90, ha="center", va="bottom", fontsize=6.5, color="0.4",
                        transform=ax.get_xaxis_transform())  # at the axis' foot, linear or log
                continue
            xs.append(x + offset)
            heights.append(metric.scaled(stat.mean))
            errors.append(metric.scaled(stat.std) or 0.0)
            extra = annotations(metric, variant) if annotations else None
            texts.append(_value_text(metric, heights[-1]) + (f" ({extra})" if extra else ""))
        bars = ax.bar(xs, heights, width, yerr=errors if any(errors) else None, color=palette[metric.series],
                      capsize=2, error_kw={"elinewidth": 0.8})
        ax.bar_label(bars, labels=texts, fontsize=6, padding=2, rotation=90 if vertical else 0)
    ax.set_xticks(range(len(variants)), [_tick_label(v) for v in variants])
    ax.set_xlim(-0.6, len(variants) - 0.4)
    if variants and variants[0].is_baseline:
        ax.axvline(0.5, color="0.5", linestyle=":", linewidth=1)
    return [Patch(color=palette[metric.series], label=label) for metric, label in zip(metrics, labels)]


def _strength_axis(ax, method, strengths):
    ax.set_xlabel(method.strength_label + (" (log scale)" if method.log_scale else ""))
    if not method.log_scale:
        return
    positive = [s for s in strengths if s > 0]
    if len(positive) == len(strengths):
        ax.set_xscale("log")
    else:  # a strength of 0 has no place on a log axis: linear around zero, logarithmic beyond the smallest
        ax.set_xscale("symlog", linthresh=min(positive, default=1.0))


def _mark_not_learned(ax, xs):
    """'x' markers on the bottom edge at the x positions of variants that did not learn."""
    if xs:
        ax.plot(xs, [0.02] * len(xs), linestyle="none", marker="x", color=NOT_LEARNED_COLOR, markersize=7,
                transform=ax.get_xaxis_transform(), clip_on=False)


def _layer_handle(layer, layers, label=None):
    color, marker = layer_style(layer, layers)
    return Line2D([], [], color=color, marker=marker, label=label or layer)


def _not_learned_handle():
    return Line2D([], [], color=NOT_LEARNED_COLOR, marker="x", linestyle="none", label=NOT_LEARNED_LABEL)


def _side_legend(fig, handles, title=None):
    # Centred on the right edge: the upper corner would collide with the suptitle.
    fig.legend(handles=handles, loc="outside right center", frameon=False, title=title)


def _panel_grid(count, ncols, panel_size, margins):
    """A figure with ``count`` panels in rows of ``ncols`` (the unused ones hidden): ``(fig, axes)``."""
    ncols = min(ncols, count)
    nrows = math.ceil(count / ncols)
    fig = new_figure(panel_size[0] * ncols + margins[0], panel_size[1] * nrows + margins[1])
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _percent_limits(ax, metric):
    if metric.percent:
        ax.set_ylim(-3, 109)
    else:
        ax.set_ylim(bottom=0)


# --------------------------------------------------------------------------- figure 1

def plot_per_layer(results, stem):
    """Figure 1: clean and robust accuracy, and success over initially correct images, per regularised layer."""
    shown = _shown_variants(results)
    if not shown:
        return []
    untargeted = results.attacks_where(targeted=False)
    panels = [
        ("Accuracy (robust: over all n)", "accuracy (%)",
         [CLEAN_ACC] + ([WORST_CASE] if any(v.worst_case.mean is not None for v in shown) else [])
         + [robust_acc(results, k) for k in untargeted]),
        ("Untargeted attack success over the initially correct images", "success (%)",
         [success_correct(results, k) for k in untargeted]),
    ]
    with figure_style():
        fig = new_figure(max(8.0, (0.7 + 0.25 * len(untargeted)) * len(shown) + 3.5), 7.0)
        axes = fig.subplots(2, 1)
        for ax, (title, ylabel, metrics) in zip(axes, panels):
            ax.set_title(title, loc="left")
            ax.set_ylabel(ylabel)
            ax.set_ylim(0, 118)
            if metrics:
                handles = _grouped_bars(ax, attack_palette(results), shown, metrics)
                ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
            else:
                ax.text(0.5, 0.5, "no untargeted attack was evaluated", transform=ax.transAxes, ha="center",
                        color="0.4")
                ax.set_xticks(range(len(shown)), [_tick_label(v) for v in shown])
        axes[1].set_xlabel("regularised layer (standard = no regularisation)")
        fig.suptitle(f"{results.sparsity_method.title} at one layer: accuracy and robustness per layer\n"
                     f"{_strength_choice_text(results, shown)}; {_seeds_text(results)}", fontsize=10)
        add_footnote(fig, footnote_lines(results, untargeted, [WORST_CASE_NOTE]))
        return save_figure(fig, stem)


WORST_CASE_NOTE = ("Worst case: an image counts as robust only if every attack run on it failed (and its L-inf eps* "
                   "exceeds eps, where measured); over all n, the query-based attacks on their subset.")


# --------------------------------------------------------------------------- figure 2

def _sweep_panel(ax, results, metric, layers):
    for layer in layers:
        color, marker = layer_style(layer, results.layer_names)
        variants = results.at_layer(layer)
        points = [(v.strength, metric.stat(v)) for v in variants if v.learned]
        points = [(s, st) for s, st in points if st.mean is not None]
        if points:
            ax.errorbar([s for s, _ in points], [metric.scaled(st.mean) for _, st in points],
                        yerr=[metric.scaled(st.std) or 0.0 for _, st in points], color=color, marker=marker,
                        markersize=4.5, capsize=2, linewidth=1.2)
        _mark_not_learned(ax, [v.strength for v in variants if not v.learned])
    baseline = results.baseline
    if baseline and baseline.learned and metric is OWN_SPARSITY:
        for layer in layers:  # the baseline's sparsity differs per layer
            stat = baseline.sparsity.get(layer)
            if stat and stat.mean is not None:
                ax.axhline(metric.scaled(stat.mean), color=layer_style(layer, results.layer_names)[0],
                           linestyle="--", linewidth=0.9)
    elif baseline and baseline.learned and metric.stat(baseline).mean is not None:
        ax.axhline(metric.scaled(metric.stat(baseline).mean), color=BASELINE_COLOR, linestyle="--", linewidth=1)
    ax.set_title(metric.panel_title + ("\n(dashed: standard, same layer)" if metric is OWN_SPARSITY else ""), fontsize=9)
    ax.set_ylabel(metric.unit)
    _percent_limits(ax, metric)


def plot_strength_sweep(results, stem):
    """Figure 2: clean and robust accuracy, queries and sparsity against strength, one line per swept layer."""
    layers = results.swept_layers()
    if not layers:
        return []
    untargeted = results.attacks_where(targeted=False)
    queried = results.attacks_where(targeted=False, counts_queries=True)
    metrics = ([CLEAN_ACC] + [robust_acc(results, k) for k in untargeted]
               + [median_queries(results, k) for k in queried] + [OWN_SPARSITY])
    swept = [v for layer in layers for v in results.at_layer(layer)]
    empty = [m for m in metrics if all(m.stat(v).mean is None for v in swept)]
    metrics = [m for m in metrics if m not in empty]
    strengths = [v.strength for layer in layers for v in results.at_layer(layer)]
    with figure_style():
        fig, axes = _panel_grid(len(metrics), 4, (3.0, 3.0), (1.8, 1.6))
        for ax, metric in zip(axes, metrics):
            _sweep_panel(ax, results, metric, layers)
            _strength_axis(ax, results.sparsity_method, strengths)
        handles = [_layer_handle(layer, results.layer_names) for layer in layers]
        if results.baseline:
            handles.append(Line2D([], [], color=BASELINE_COLOR, linestyle="--", label=BASELINE_LABEL))
        if any(not v.learned for layer in layers for v in results.at_layer(layer)):
            handles.append(_not_learned_handle())
        _side_legend(fig, handles, title="regularised layer")
        fig.suptitle(f"{results.sparsity_method.title}: metrics against strength, per regularised layer "
                     f"({_seeds_text(results)})", fontsize=10)
        add_footnote(fig, footnote_lines(results, untargeted, [
            "Robust accuracy over all n attacked images; queries: median over the images that were correct and "
            "then fooled."] + [f"Not drawn, no value at any strength (e.g. no image fooled): {m.title}."
                               for m in empty]))
        return save_figure(fig, stem)


# --------------------------------------------------------------------------- figure 3

def _query_goals(results):
    goals = []
    for targeted in (False, True):
        keys = results.attacks_where(targeted=targeted, counts_queries=True)
        if keys:
            goals.append(("targeted" if targeted else "untargeted", keys))
    return goals


def _fooled_text(metric, variant):
    summary = variant.attacks.get(metric.attack)
    if summary is None or None in summary.n_fooled_correct:
        return None
    return f"{sum(summary.n_fooled_correct)}/{sum(summary.n_correct)}"


def _query_panel(ax, palette, results, variants, keys):
    ax.set_ylabel("median queries (fooled & correct), log scale")
    return _grouped_bars(ax, palette, variants, [median_queries(results, key) for key in keys],
                         labels=[results.attack_info[key].title for key in keys], annotations=_fooled_text)


def _common_top(axes):
    """One logarithmic y axis for query panels that share it, from 1 query (a bar's base) to room above the
    tallest bar for its vertical label (medians span decades: 6 queries next to 2,097); no ticks when no bar
    has a value."""
    tops = [ax.dataLim.y1 for ax in axes if ax.has_data() and math.isfinite(ax.dataLim.y1) and ax.dataLim.y1 > 0]
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylim(1, max(tops) * 12 if tops else 10)
        if not tops:
            ax.set_yticks([])


def plot_queries(results, stem):
    """Figure 3: median queries of the query-based attacks per variant, over the images fooled among the
    initially correct, with fooled/correct counts on the bars."""
    goals = _query_goals(results)
    shown = _shown_variants(results)
    if not goals or not shown:
        return []
    with figure_style():
        fig = new_figure(max(8.0, 0.9 * len(shown) + 3.5), 3.4 * len(goals) + 1.6)
        axes = fig.subplots(len(goals), 1, squeeze=False)[:, 0]
        palette = attack_palette(results)
        for ax, (goal, keys) in zip(axes, goals):
            handles = _query_panel(ax, palette, results, shown, keys)
            _common_top([ax])
            ax.set_title(f"Query-based attacks, {goal}", loc="left")
            ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        axes[-1].set_xlabel("regularised layer (standard = no regularisation)")
        fig.suptitle(f"{results.sparsity_method.title}: queries to a successful black-box attack\n"
                     f"{_strength_choice_text(results, shown)}; {_seeds_text(results)}", fontsize=10)
        add_footnote(fig, footnote_lines(results, [k for _, keys in goals for k in keys], [
            "Bars: median queries over the images that were classified correctly and then fooled; under each value "
            "fooled/correct (summed over seeds). Higher = more queries needed = harder to attack."]))
        return save_figure(fig, stem)


def plot_queries_by_method(all_results, stem):
    """Figure 3 across methods: the query bars of every method side by side, one y limit per row."""
    all_results = [r for r in all_results if _query_goals(r) and _shown_variants(r)]
    if len(all_results) < 2:
        return []
    goals = [goal for goal in ("untargeted", "targeted")
             if any(goal == g for r in all_results for g, _ in _query_goals(r))]
    widest = max(len(_shown_variants(r)) for r in all_results)
    palette = attack_palette(*all_results)
    handles = {}
    with figure_style():
        fig = new_figure(min(18.0, 1.0 * widest * len(all_results) + 5.5), 3.4 * len(goals) + 2.0)
        axes = fig.subplots(len(goals), len(all_results), squeeze=False, sharey="row")
        for col, results in enumerate(all_results):
            keys_by_goal = dict(_query_goals(results))
            for row, goal in enumerate(goals):
                ax = axes[row, col]
                if goal in keys_by_goal:
                    for handle in _query_panel(ax, palette, results, _shown_variants(results), keys_by_goal[goal]):
                        handles.setdefault(handle.get_label(), handle)
                else:
                    ax.text(0.5, 0.5, f"no {goal} query-based attack", transform=ax.transAxes, ha="center",
                            color="0.4")
                    ax.set_xticks([])
                ax.set_title(f"{results.sparsity_method.title}: {goal}", loc="left")
                if col:
                    ax.set_ylabel("")
        for row in range(len(goals)):
            _common_top(list(axes[row]))
        _side_legend(fig, list(handles.values()))
        fig.suptitle("Queries to a successful black-box attack, per regularised layer: "
                     + " vs ".join(r.sparsity_method.title for r in all_results), fontsize=10)
        add_footnote(fig, ["; ".join(f"{r.sparsity_method.title}: {_strength_choice_text(r, _shown_variants(r))}"
                                     for r in all_results) + ".",
                           "Median over the images classified correctly and then fooled; fooled/correct under each "
                           "value. One y scale per row."] + footnote_lines(all_results[0], []))
        return save_figure(fig, stem)


# --------------------------------------------------------------------------- figure 4

def _sparsity_panel(ax, results, metric, variants):
    layers = results.layer_names
    for layer in dict.fromkeys(v.layer for v in variants):
        color, marker = layer_style(layer, layers)
        points = sorted((v.own_sparsity.mean, metric.stat(v).mean, v.strength) for v in variants
                        if v.layer == layer and v.learned and metric.stat(v).mean is not None)
        if points:
            ax.plot([100 * x for x, _, _ in points], [metric.scaled(y) for _, y, _ in points], color=color,
                    marker=marker, markersize=5, linewidth=0.6)
        _mark_not_learned(ax, [100 * v.own_sparsity.mean for v in variants if v.layer == layer and not v.learned])
    baseline = results.baseline
    base = metric.stat(baseline) if baseline and baseline.learned else None
    if base and base.mean is not None:
        ax.axhline(metric.scaled(base.mean), color=BASELINE_COLOR, linestyle="--", linewidth=1)
    ax.set_title(metric.panel_title)
    ax.set_xlabel("sparsity of the regularised layer (% exact zeros)")
    ax.set_ylabel(metric.unit)
    _percent_limits(ax, metric)
    ax.set_xlim(-3, 103)


def plot_robustness_vs_sparsity(results, stem):
    """Figure 4: robust accuracy (and queries) against the measured sparsity of the regularised layer."""
    variants = [v for v in results.variants if not v.is_baseline and v.own_sparsity.mean is not None]
    untargeted = results.attacks_where(targeted=False)
    metrics = ([robust_acc(results, k) for k in untargeted]
               + [median_queries(results, k) for k in results.attacks_where(targeted=False, counts_queries=True)])
    metrics = [m for m in metrics if any(m.stat(v).mean is not None for v in variants)]
    if not variants or not metrics:
        return []
    with figure_style():
        fig, axes = _panel_grid(len(metrics), 3, (4.2, 3.4), (2.4, 1.6))
        for ax, metric in zip(axes, metrics):
            _sparsity_panel(ax, results, metric, variants)
        method = results.sparsity_method
        handles = []
        for layer in dict.fromkeys(v.layer for v in variants):
            strengths = sorted(v.strength for v in variants if v.layer == layer)
            span = method.strength_text(strengths[0]) + ("" if len(strengths) == 1 else
                                                        f"…{strengths[-1]:g}")
            handles.append(_layer_handle(layer, results.layer_names, f"{layer} ({span})"))
        if results.baseline:
            handles.append(Line2D([], [], color=BASELINE_COLOR, linestyle="--", label=BASELINE_LABEL))
        if any(not v.learned for v in variants):
            handles.append(_not_learned_handle())
        _side_legend(fig, handles, title="regularised layer (strengths)")
        fig.suptitle(f"{method.title}: robustness against measured activation sparsity ({_seeds_text(results)})",
                     fontsize=10)
        add_footnote(fig, footnote_lines(results, untargeted, [
            "One point per variant (mean over seeds); a layer's points are joined in order of sparsity. Sparsity "
            "measured on the test set at the regularised layer; dashed: the standard model."]))
        return save_figure(fig, stem)


# --------------------------------------------------------------------------- figures 5 and 6: eps*

NORM_TITLES = {"linf": "L-inf", "l2": "L2"}
SWEEP_MARKERS = ("s", "^", "D", "v", "P")


def _norms(results):
    return [norm for norm in NORM_TITLES if any(norm in v.minimal for v in results.variants)]


def _variant_style(results, variant):
    """Colour, marker and line style of a variant in the curve figures: layer colour, one dash per strength."""
    if variant.is_baseline:
        return BASELINE_COLOR, "o", "-"
    color, marker = layer_style(variant.layer, results.layer_names)
    siblings = sorted(s.strength for s in results.at_layer(variant.layer))
    return color, marker, ("-", "--", ":", "-.")[siblings.index(variant.strength) % 4] if len(siblings) > 1 else "-"


def _curve_panel(ax, results, norm, handles):
    factor, unit = eps_axis(results.dataset, norm)
    censored, reach = [], []
    for v in results.variants:
        summary = v.eps_star.get(norm) if v.learned else None
        if summary is None:
            continue
        # where the curve reaches its last value (every image fooled, or only censored ones left)
        reach.append(factor * next(e for e, mean, _ in summary.curve if mean <= summary.curve[-1][1]))
        color, _, style = _variant_style(results, v)
        xs = [factor * e for e, _, _ in summary.curve]
        ys = [100 * mean for _, mean, _ in summary.curve]
        (line,) = ax.plot(xs, ys, color=color, linestyle=style, linewidth=1.3, label=f"{v.label}, n = {summary.n}")
        if all(spread is not None for _, _, spread in summary.curve):
            ax.fill_between(xs, [y - 100 * sd for y, (_, _, sd) in zip(ys, summary.curve)],
                            [y + 100 * sd for y, (_, _, sd) in zip(ys, summary.curve)], color=color, alpha=0.12,
                            linewidth=0)
        if summary.n_censored:  # beyond the limit the curve is unknown: these images were never fooled
            ax.plot([xs[-1]], [ys[-1]], marker=">", color=color, linestyle="none", markersize=5)
            censored.append(f"{v.label} {summary.n_censored}/{summary.n}")
        handles.setdefault(v.label, line)
    if norm == "linf":
        keys = [k for k in results.attacks_where(WHITE_BOX, targeted=False)
                if any(k in v.curves for v in results.variants)]
        for marker, key in zip(SWEEP_MARKERS, keys):
            for v in results.variants:
                points = [(factor * eps, stat) for eps, stat in v.curves.get(key, {}).items() if stat.mean is not None]
                if points and v.learned:
                    color, _, _ = _variant_style(results, v)
                    ax.errorbar([e for e, _ in points], [100 * st.mean for _, st in points],
                                yerr=[100 * (st.std or 0.0) for _, st in points], color=color, marker=marker,
                                markersize=4, linestyle=":", linewidth=0.7, capsize=2, markerfacecolor="white")
            handles.setdefault(key, Line2D([], [], color="0.3", marker=marker, linestyle=":", markerfacecolor="white",
                                           label=f"{results.attack_info[key].title} at --eps-sweep eps"))
    eps = sorted({config.get("eps") for config in results.eval_configs if config.get("eps")})
    if norm == "linf":
        for value in eps:
            ax.axvline(factor * value, color="0.5", linestyle=":", linewidth=0.9)
    if reach and not censored:  # every image fooled well below the limit: show where the curves fall, not the rest
        right = max(reach + [factor * value for value in eps if norm == "linf"])
        ax.set_xlim(-0.02 * right, 1.1 * right)
    ax.set_title(f"{NORM_TITLES[norm]}: robust accuracy read off eps*", loc="left")
    ax.set_xlabel(f"eps ({unit}), {NORM_TITLES[norm]}")
    ax.set_ylim(-3, 103)
    return censored


def plot_robustness_curves(results, stem):
    """Figure 5: robust accuracy against eps read off each image's minimal perturbation eps* (the fraction of
    images whose eps* exceeds eps, i.e. one minus the distribution function of eps*), one panel per norm, one line
    per variant; the --eps-sweep points of the white-box attacks as markers on the L-inf panel."""
    norms = _norms(results)
    swept = any(v.curves for v in results.variants)
    if swept and "linf" not in norms:
        norms = ["linf", *norms]
    if not norms:
        return []
    with figure_style():
        fig = new_figure(max(8.0, 4.6 * len(norms) + 4.0), 4.6)
        axes = fig.subplots(1, len(norms), squeeze=False, sharey="row")[0]
        handles, censored = {}, {}
        for ax, norm in zip(axes, norms):
            censored[norm] = _curve_panel(ax, results, norm, handles)
        axes[0].set_ylabel("robust accuracy (%) = 100 - CDF of eps*")
        fig.legend(handles=list(handles.values()), loc="outside right center", frameon=False, title="variant")
        fig.suptitle(f"{results.sparsity_method.title}: robust accuracy against eps, from each image's smallest "
                     f"fooling perturbation ({_seeds_text(results)})", fontsize=10)
        notes = ["eps*: per image the smaller of FAB's and a PGD bisection's smallest fooling perturbation (0 for "
                 "an image misclassified clean); n = images x seeds; bands: sample std of the curve over seeds.",
                 "Each curve ends at the search limit; a '>' marks images never fooled within it (censored), "
                 "counted as robust up to the limit: "
                 + ("; ".join(f"{NORM_TITLES[n]}: {', '.join(c)}" for n, c in censored.items() if c) or "none") + ".",
                 "Dotted vertical line: the attacks' eps."]
        add_footnote(fig, footnote_lines(results, [k for k in handles if k in results.attack_info], notes))
        return save_figure(fig, stem)


def _interval_point(ax, x, median, low, high, limit, color):
    """A median with its interval; a censored median (or bound) drawn at the limit with an upward arrow."""
    top = limit if math.isinf(high) else high
    if math.isinf(median):
        ax.plot([x], [limit], marker="o", markerfacecolor="white", markeredgecolor=color, linestyle="none")
        ax.annotate("", xy=(x, limit * 1.12), xytext=(x, limit), arrowprops={"arrowstyle": "->", "color": color})
        return
    ax.errorbar([x], [median], yerr=[[median - low], [top - median]], color=color, marker="o", markersize=5,
                capsize=3, linestyle="none")
    if math.isinf(high):
        ax.annotate("", xy=(x, limit * 1.12), xytext=(x, limit), arrowprops={"arrowstyle": "->", "color": color})


def _median_panel(ax, results, shown, norm):
    factor, unit = eps_axis(results.dataset, norm)
    baseline = results.baseline.eps_star.get(norm) if results.baseline else None
    if baseline is not None and math.isfinite(baseline.median):
        ax.axhspan(factor * baseline.low, factor * min(baseline.high, baseline.limit), color=BASELINE_COLOR,
                   alpha=0.08, linewidth=0)
        ax.axhline(factor * baseline.median, color=BASELINE_COLOR, linestyle="--", linewidth=1)
    limit, tops = None, []
    for x, v in enumerate(shown):
        summary = v.eps_star.get(norm) if v.learned else None
        if summary is None:
            ax.text(x, 0, " not measured" if v.learned else " did not learn", rotation=90, ha="center", va="bottom",
                    fontsize=6.5, color="0.4")
            continue
        limit = factor * summary.limit
        color = BASELINE_COLOR if v.is_baseline else layer_style(v.layer, results.layer_names)[0]
        _interval_point(ax, x, factor * summary.median, factor * summary.low, factor * summary.high, limit, color)
        tops.append(factor * summary.high)
    if limit is not None:
        if any(math.isinf(top) for top in tops):  # something reaches past the limit: show the limit
            ax.axhline(limit, color="0.5", linestyle="-.", linewidth=0.8)
            ax.set_ylim(0, limit * 1.25)
        else:
            ax.set_ylim(0, max(tops) * 1.3)
    ax.set_title(f"{NORM_TITLES[norm]}: median eps* (95% bootstrap interval)", loc="left")
    ax.set_ylabel(f"eps* ({unit})")


def _paired_panel(ax, results, shown, norm):
    factor, unit = eps_axis(results.dataset, norm)
    ax.axhline(0, color=BASELINE_COLOR, linestyle="--", linewidth=1)
    finite = []
    for x, v in enumerate(shown):
        summary = v.eps_star.get(norm) if v.learned and not v.is_baseline else None
        paired = summary.paired if summary else None
        if paired is None:
            note = "baseline" if v.is_baseline else (summary.not_paired if summary else "not measured")
            ax.text(x, 0.02, f" {note}", rotation=90, ha="center", va="bottom", fontsize=6, color="0.4",
                    transform=ax.get_xaxis_transform())
            continue
        color = layer_style(v.layer, results.layer_names)[0]
        values = [paired.median_low, paired.median_high, paired.low, paired.high]
        finite += [factor * value for value in values if math.isfinite(value)]
        low, high = (factor * bound for bound in (paired.low, paired.high))
        middle = factor * (paired.median_low + paired.median_high) / 2 if all(
            map(math.isfinite, (paired.median_low, paired.median_high))) else None
        ax.vlines(x, max(low, -1e9), min(high, 1e9), color=color, linewidth=1.2)
        if middle is not None:
            ax.plot([x], [middle], marker="D", color=color, markersize=5)
    if finite:
        span = max(abs(value) for value in finite) * 1.3 or 1.0
        ax.set_ylim(-span, span)
    ax.set_title(f"{NORM_TITLES[norm]}: paired difference to standard, median over images (95% interval)", loc="left")
    ax.set_ylabel(f"eps* - standard's eps* ({unit})")


def _eps_star_counts(variant, norm):
    summary = variant.eps_star.get(norm)
    if summary is None:
        return ""
    return f"\nn={summary.n}" + (f"\n{summary.n_censored} cens." if summary.n_censored else "")


def _paired_counts(variant, norm):
    summary = variant.eps_star.get(norm)
    if summary is None or summary.paired is None:
        return ""
    return f"\nn={summary.paired.n}" + (f"\n{summary.paired.n_unknown} unkn." if summary.paired.n_unknown else "")


def plot_eps_star_per_layer(results, stem):
    """Figure 6: per regularised layer, the median eps* with its 95% bootstrap interval against the baseline's,
    and the median of the per-image differences to the baseline on the same images with its interval."""
    norms = _norms(results)
    shown = _shown_variants(results)
    if not norms or not shown:
        return []
    with figure_style():
        fig = new_figure(max(8.0, (0.75 * len(shown) + 1.5) * len(norms) + 1.0), 7.4)
        axes = fig.subplots(2, len(norms), squeeze=False)
        for column, norm in enumerate(norms):
            _median_panel(axes[0, column], results, shown, norm)
            _paired_panel(axes[1, column], results, shown, norm)
            for ax, counts in zip(axes[:, column], (_eps_star_counts, _paired_counts)):
                ax.set_xticks(range(len(shown)), [_tick_label(v) + counts(v, norm) for v in shown])
                ax.set_xlim(-0.6, len(shown) - 0.4)
                if shown[0].is_baseline:
                    ax.axvline(0.5, color="0.5", linestyle=":", linewidth=1)
        fig.suptitle(f"{results.sparsity_method.title}: smallest fooling perturbation eps* per regularised layer\n"
                     f"{_strength_choice_text(results, shown)}; {_seeds_text(results)}", fontsize=10)
        add_footnote(fig, [
            "eps*: per image the smaller of FAB's and a PGD bisection's smallest fooling perturbation, 0 where "
            "misclassified clean; medians over images x seeds. Top: dashed line and band, the standard model's median "
            "and interval; dash-dot line, the search limit; an open marker with an arrow: censored (not fooled within "
            "the limit). Bottom: median over the same images of (variant's eps* - standard's eps*), same seed; a "
            "bar without a diamond: images censored in both (unknown differences) could move the median anywhere "
            "in it. Intervals: 95% percentile bootstrap over images (2,000 resamples)."]
            + footnote_lines(results, []))
        return save_figure(fig, stem)


# --------------------------------------------------------------------------- figure 7: dose-response

def _seed_points(variant, layer, norm):
    """``[(sparsity of layer, median eps* over correct images)]``, one per learned seed that measured both."""
    entries = dict(variant.minimal.get(norm, ()))
    return [(sparsity[layer], median_eps_star(entries[seed], correct_only=True))
            for seed, sparsity in variant.seed_sparsity if seed in entries and layer in sparsity]


def _dose_panel(ax, results, layer, variants, norm, limit):
    factor, unit = eps_axis(results.dataset, norm)
    baseline = _seed_points(results.baseline, layer, norm) if results.baseline else []
    shown = lambda value: factor * (limit if math.isinf(value) else value)  # noqa: E731 (censored at the limit)
    if baseline:
        values = [shown(eps) for _, eps in baseline]
        ax.axhspan(min(values), max(values), color=BASELINE_COLOR, alpha=0.12, linewidth=0)
        ax.plot([100 * s for s, _ in baseline], values, linestyle="none", marker="o", markersize=4,
                markerfacecolor="white", markeredgecolor=BASELINE_COLOR)
    color, marker = layer_style(layer, results.layer_names)
    means, labels = [], []
    for variant in sorted(variants, key=lambda v: v.strength):
        points = _seed_points(variant, layer, norm)
        if not points:
            continue
        ax.plot([100 * s for s, _ in points], [shown(eps) for _, eps in points], linestyle="none", marker=marker,
                markersize=4, color=color, alpha=0.8)
        finite = [(s, eps) for s, eps in points if math.isfinite(eps)]
        if finite:
            means.append((sum(s for s, _ in finite) / len(finite), sum(e for _, e in finite) / len(finite)))
        labels.append((results.sparsity_method.strength_text(variant.strength), 100 * points[0][0],
                       shown(points[0][1])))
    if len(means) > 1:
        ax.plot([100 * s for s, _ in means], [factor * e for _, e in means], color=color, linewidth=0.8)
    if any(math.isinf(eps) for v in [*variants, results.baseline] if v for _, eps in _seed_points(v, layer, norm)):
        ax.axhline(factor * limit, color="0.5", linestyle="-.", linewidth=0.8)
    ax.set_title(f"regularised at {layer}", loc="left")
    ax.set_xlabel(f"sparsity of {layer} (% exact zeros, test set)")
    ax.set_ylabel(f"median eps* over correct images ({unit})")
    ax.set_xlim(-3, 103)
    ax.set_ylim(bottom=0)
    _place_labels(ax, labels, color)


def _place_labels(ax, labels, color):
    """Each ``(text, x, y)`` beside its point, on the first side (right or left, above or below) where it covers no
    earlier label and no labelled point: saturating doses sit a point or two of sparsity apart."""
    renderer = ax.figure.canvas.get_renderer()
    points = ax.transData.transform([(x, y) for _, x, y in labels]) if labels else []
    sides = (((4, 4), "left"), ((4, -10), "left"), ((-4, 4), "right"), ((-4, -10), "right"))
    placed = []

    def draw(text, xy, side):
        label = ax.annotate(text, xy, textcoords="offset points", xytext=side[0], ha=side[1], fontsize=6.5, color=color)
        return label, label.get_window_extent(renderer).padded(1.5)

    for text, x, y in labels:
        for side in sides:
            label, box = draw(text, (x, y), side)
            if not any(box.overlaps(other) for other in placed) and not any(box.contains(*p) for p in points):
                break
            label.remove()
        else:  # no side is clear: the first
            label, box = draw(text, (x, y), sides[0])
        placed.append(box)


def plot_eps_star_vs_sparsity(results, stem, norm="linf"):
    """Figure 7, the dose-response: per trained model (seed), its median L-inf eps* over the images it classifies
    correctly against the measured sparsity of the regularised layer; the baseline's seeds (open circles, at their
    own sparsity of that layer) and their spread (band) are what an effect must leave."""
    variants = [v for v in results.variants if not v.is_baseline and v.learned and norm in v.minimal]
    if not variants:
        return []
    layers = list(dict.fromkeys(v.layer for v in variants))
    limit = max(entry.limit for v in [*variants, results.baseline] if v and norm in v.minimal
                for _, entry in v.minimal[norm])
    with figure_style():
        fig, axes = _panel_grid(len(layers), 3, (4.2, 3.4), (1.0, 1.8))
        for ax, layer in zip(axes, layers):
            _dose_panel(ax, results, layer, [v for v in variants if v.layer == layer], norm, limit)
        base_seeds = len(results.baseline.seed_sparsity) if results.baseline else 0
        fig.suptitle(f"{results.sparsity_method.title}: median eps* against the sparsity it reached,\n"
                     f"one point per trained model", fontsize=10)
        add_footnote(fig, [
            f"Filled markers: one trained model (seed) per point, labelled with its strength; line: the mean of each "
            f"strength's seeds. Open circles and grey band: the standard model's {base_seeds} seed(s), their median "
            f"eps* spread (min to max), drawn at their own sparsity of the layer. eps*: the minimum over FAB, the "
            f"APGD bisection and every attack run, per image; a censored median is drawn at the search limit "
            f"(dash-dot)."] + footnote_lines(results, []))
        return save_figure(fig, stem)
