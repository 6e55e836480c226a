"""The figures of ``main.py --mode vis``, one function per figure.

Each takes merged results (``vis.results_io.MethodResults``) and a file stem,
writes ``stem.png`` and ``stem.pdf`` and returns their paths, or [] when the
results hold nothing that figure could show. Series whose attack was not
evaluated are left out and named in the figure's footnote.
"""
import math

from matplotlib.lines import Line2D

from sparsity.variants import DEFAULT_STRENGTH
from vis.metrics import (CLEAN_ACC, OWN_SPARSITY, expected_nes_keys, median_queries, nes_keys, robust_acc,
                         success_rate)
from vis.render import (BASELINE_COLOR, LAYER_COLORS, LAYER_MARKERS, add_footnote, figure_style, new_figure,
                        save_figure)
from vis.results_io import attack_title, nes_attack, strength_text

METHOD_TITLE = {"l1": "L1 activation penalty", "dropout": "Dropout"}
STRENGTH_AXIS = {"l1": "L1 strength λ (log scale)", "dropout": "dropout probability p"}
ACCURACY_COLORS = ("tab:blue", "tab:orange")
SUCCESS_COLORS = ("tab:red", "tab:purple", "tab:green", "tab:olive", "tab:cyan")
MOMENTUM_COLORS = ("tab:purple", "tab:green", "tab:olive", "tab:cyan")
BASELINE_LABEL = "standard (no regularisation)"


# --------------------------------------------------------------------------- shared pieces

def _seeds_text(results):
    seeds = results.seeds
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"mean ± std over seeds {', '.join(map(str, seeds))}"


def _error_bar_text(*all_results):
    return " Error bars: std over seeds." if any(len(r.seeds) > 1 for r in all_results) else ""


def _absent_note(results, expected):
    absent = [attack_title(key) for key in expected if key not in results.attacks]
    return [f"Not in the results, so not plotted: {'; '.join(absent)}."] if absent else []


def _tick_label(variant):
    return "standard" if variant.is_baseline else f"{variant.layer}\n{strength_text(variant.method, variant.strength)}"


def _strength_choice_text(results, shown):
    default = DEFAULT_STRENGTH[results.method]
    if all(v.strength == default for v in shown if not v.is_baseline):
        return f"default strength {strength_text(results.method, default)} at every layer"
    return (f"strength under each layer: the default {strength_text(results.method, default)} where evaluated, "
            "else the evaluated one closest to it")


def _shown_variants(results):
    """Figures 1 and 3 show the baseline and one strength per layer; figure 2 has the sweeps."""
    return ([results.baseline] if results.baseline else []) + results.one_per_layer()


def _value_text(metric, value):
    return f"{value:.1f}" if metric.percent else f"{value:.0f}"


def _absence_text(metric, variant):
    if metric.attack and metric.attack not in variant.attacks:
        return "not run"
    return "none fooled" if not metric.percent else "n/a"


def _grouped_bars(ax, variants, metrics, colors, labels=None):
    """One group of bars per variant, one bar per metric, value on top; a note where a variant lacks the value."""
    labels = labels or [metric.title for metric in metrics]
    width = 0.8 / len(metrics)
    for i, (metric, color, label) in enumerate(zip(metrics, colors, labels)):
        offset = (i - (len(metrics) - 1) / 2) * width
        xs, heights, errors = [], [], []
        for x, variant in enumerate(variants):
            stat = metric.stat(variant)
            if stat.mean is None:
                ax.text(x + offset, 0, f" {_absence_text(metric, variant)}", rotation=90, ha="center",
                        va="bottom", fontsize=6.5, color="0.4")
                continue
            xs.append(x + offset)
            heights.append(metric.scaled(stat.mean))
            errors.append(metric.scaled(stat.std) or 0.0)
        bars = ax.bar(xs, heights, width, yerr=errors if any(errors) else None, color=color, label=label,
                      capsize=2, error_kw={"elinewidth": 0.8})
        ax.bar_label(bars, labels=[_value_text(metric, h) for h in heights], fontsize=6, padding=1)
    ax.set_xticks(range(len(variants)), [_tick_label(v) for v in variants])
    ax.set_xlim(-0.6, len(variants) - 0.4)
    if variants and variants[0].is_baseline:
        ax.axvline(0.5, color="0.5", linestyle=":", linewidth=1)


def _strength_axis(ax, method, strengths):
    ax.set_xlabel(STRENGTH_AXIS[method])
    if method != "l1":
        return
    positive = [s for s in strengths if s > 0]
    if len(positive) == len(strengths):
        ax.set_xscale("log")
    else:  # λ = 0 has no place on a log axis: linear around zero, logarithmic beyond the smallest λ
        ax.set_xscale("symlog", linthresh=min(positive, default=1.0))


def _layer_handle(layer, label=None):
    return Line2D([], [], color=LAYER_COLORS[layer], marker=LAYER_MARKERS[layer], label=label or layer)


def _side_legend(fig, handles, title=None):
    # Centred on the right edge: the upper corner would collide with the suptitle.
    fig.legend(handles=handles, loc="outside right center", frameon=False, title=title)


def _hide_empty(axes, used):
    for ax in axes[used:]:
        ax.set_visible(False)


# --------------------------------------------------------------------------- figure 1

def plot_per_layer(results, stem):
    """Figure 1: clean accuracy, PGD robust accuracy and attack success per regularised layer."""
    shown = _shown_variants(results)
    if not shown:
        return []
    pgd = ["pgd"] if "pgd" in results.attacks else []
    untargeted = nes_keys(results.attacks, "untargeted")
    panels = [
        ("Accuracy", "accuracy (%)", [CLEAN_ACC] + [robust_acc(k) for k in pgd], ACCURACY_COLORS),
        ("Untargeted attack success", "success rate over all n (%)",
         [success_rate(k) for k in pgd + untargeted], SUCCESS_COLORS),
    ]
    with figure_style():
        fig = new_figure(max(8.0, 1.0 * len(shown) + 3.5), 6.8)
        axes = fig.subplots(2, 1)
        for ax, (title, ylabel, metrics, colors) in zip(axes, panels):
            ax.set_title(title, loc="left")
            ax.set_ylabel(ylabel)
            ax.set_ylim(0, 109)
            if metrics:
                _grouped_bars(ax, shown, metrics, colors)
                ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
            else:
                ax.text(0.5, 0.5, "no attack was evaluated", transform=ax.transAxes, ha="center", color="0.4")
                ax.set_xticks(range(len(shown)), [_tick_label(v) for v in shown])
        axes[1].set_xlabel("regularised layer (standard = no regularisation)")
        fig.suptitle(f"{METHOD_TITLE[results.method]} at one layer: accuracy and robustness per layer\n"
                     f"{_strength_choice_text(results, shown)}; {_seeds_text(results)}", fontsize=10)
        add_footnote(fig, _absent_note(results, ["pgd"] + expected_nes_keys("untargeted"))
                     + ["Success rate over all n attacked samples (already misclassified ones count as successes); "
                        "n per attack in summary.md." + _error_bar_text(results)])
        return save_figure(fig, stem)


# --------------------------------------------------------------------------- figure 2

def _sweep_panel(ax, results, metric, layers):
    for layer in layers:
        points = [(v.strength, metric.stat(v)) for v in results.at_layer(layer)]
        points = [(s, st) for s, st in points if st.mean is not None]
        if points:
            ax.errorbar([s for s, _ in points], [metric.scaled(st.mean) for _, st in points],
                        yerr=[metric.scaled(st.std) or 0.0 for _, st in points], color=LAYER_COLORS[layer],
                        marker=LAYER_MARKERS[layer], markersize=4.5, capsize=2, linewidth=1.2)
    baseline = results.baseline
    if baseline and metric is OWN_SPARSITY:
        for layer in layers:  # the baseline's sparsity differs per layer
            stat = baseline.sparsity.get(layer)
            if stat and stat.mean is not None:
                ax.axhline(metric.scaled(stat.mean), color=LAYER_COLORS[layer], linestyle="--", linewidth=0.9)
    elif baseline and metric.stat(baseline).mean is not None:
        ax.axhline(metric.scaled(metric.stat(baseline).mean), color=BASELINE_COLOR, linestyle="--", linewidth=1)
    ax.set_title(metric.panel_title + ("\n(dashed: standard, same layer)" if metric is OWN_SPARSITY else ""))
    ax.set_ylabel(metric.unit)
    if metric.percent:
        ax.set_ylim(-3, 103)
    else:
        ax.set_ylim(bottom=0)


def plot_strength_sweep(results, stem):
    """Figure 2: every metric against strength, one line per layer evaluated at two or more strengths."""
    layers = results.swept_layers()
    if not layers:
        return []
    pgd = ["pgd"] if "pgd" in results.attacks else []
    untargeted = nes_keys(results.attacks, "untargeted")
    metrics = ([CLEAN_ACC] + [success_rate(k) for k in pgd] + [robust_acc(k) for k in pgd]
               + [success_rate(k) for k in untargeted] + [median_queries(k) for k in untargeted] + [OWN_SPARSITY])
    strengths = [v.strength for layer in layers for v in results.at_layer(layer)]
    ncols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    with figure_style():
        fig = new_figure(3.0 * ncols + 1.6, 3.0 * nrows + 0.9)
        axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
        for ax, metric in zip(axes, metrics):
            _sweep_panel(ax, results, metric, layers)
            _strength_axis(ax, results.method, strengths)
        _hide_empty(axes, len(metrics))
        handles = [_layer_handle(layer) for layer in layers]
        if results.baseline:
            handles.append(Line2D([], [], color=BASELINE_COLOR, linestyle="--", label=BASELINE_LABEL))
        _side_legend(fig, handles, title="regularised layer")
        fig.suptitle(f"{METHOD_TITLE[results.method]}: metrics against strength, per regularised layer "
                     f"({_seeds_text(results)})", fontsize=10)
        add_footnote(fig, _absent_note(results, ["pgd"] + expected_nes_keys("untargeted")) + [
            "NES: untargeted; median queries over the samples it fooled." + _error_bar_text(results)])
        return save_figure(fig, stem)


# --------------------------------------------------------------------------- figure 3

def _goals(attack_keys):
    return [goal for goal in ("untargeted", "targeted") if nes_keys(attack_keys, goal)]


def _momentum_label(key):
    return f"momentum {nes_attack(key)[1]:g}"


def _query_panel(ax, variants, keys):
    _grouped_bars(ax, variants, [median_queries(key) for key in keys],
                  [MOMENTUM_COLORS[i % len(MOMENTUM_COLORS)] for i in range(len(keys))],
                  labels=[_momentum_label(key) for key in keys])
    ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.06)
    ax.set_ylabel("median queries to success")


def plot_nes_queries(results, stem):
    """Figure 3 for one method: NES median queries per variant, one bar per momentum."""
    goals = _goals(results.attacks)
    shown = _shown_variants(results)
    if not goals or not shown:
        return []
    with figure_style():
        fig = new_figure(max(8.0, 0.9 * len(shown) + 3.0), 3.2 * len(goals) + 1.0)
        axes = fig.subplots(len(goals), 1, squeeze=False)[:, 0]
        for ax, goal in zip(axes, goals):
            _query_panel(ax, shown, nes_keys(results.attacks, goal))
            ax.set_title(f"NES {goal}", loc="left")
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        axes[-1].set_xlabel("regularised layer (standard = no regularisation)")
        fig.suptitle(f"{METHOD_TITLE[results.method]}: NES black-box queries to a successful attack\n"
                     f"{_strength_choice_text(results, shown)}; {_seeds_text(results)}", fontsize=10)
        add_footnote(fig, _absent_note(results, expected_nes_keys("untargeted") + expected_nes_keys("targeted"))
                     + ["Median over the samples the attack fooled; "
                        "higher = more queries needed = more robust." + _error_bar_text(results)])
        return save_figure(fig, stem)


def plot_nes_queries_comparison(all_results, stem):
    """Figure 3 across methods: the per-layer NES query bars of L1 and dropout side by side."""
    all_results = [r for r in all_results if _goals(r.attacks) and _shown_variants(r)]
    if len(all_results) < 2:
        return []
    goals = _goals(sorted({key for r in all_results for key in r.attacks}))
    momenta = sorted({key for r in all_results for key in r.attacks if nes_attack(key)},
                     key=lambda key: nes_attack(key)[1])
    widest = max(len(_shown_variants(r)) for r in all_results)
    with figure_style():
        fig = new_figure(min(16.0, 0.75 * widest * len(all_results) + 3.0), 3.2 * len(goals) + 1.2)
        axes = fig.subplots(len(goals), len(all_results), squeeze=False, sharey="row")
        for col, results in enumerate(all_results):
            shown = _shown_variants(results)
            for row, goal in enumerate(goals):
                ax = axes[row, col]
                keys = nes_keys(results.attacks, goal)
                if keys:
                    _query_panel(ax, shown, keys)
                else:
                    ax.text(0.5, 0.5, f"NES {goal} not evaluated", transform=ax.transAxes, ha="center",
                            color="0.4")
                    ax.set_xticks([])
                ax.set_title(f"{METHOD_TITLE[results.method]}: NES {goal}", loc="left")
                if col:
                    ax.set_ylabel("")
        labels = sorted({_momentum_label(key) for key in momenta}, key=lambda s: float(s.split()[-1]))
        handles = [Line2D([], [], color=MOMENTUM_COLORS[i % len(MOMENTUM_COLORS)], linewidth=8, label=label)
                   for i, label in enumerate(labels)]
        _side_legend(fig, handles)
        fig.suptitle("NES black-box queries to a successful attack, per regularised layer: "
                     + " vs ".join(METHOD_TITLE[r.method] for r in all_results), fontsize=10)
        add_footnote(fig, ["; ".join(f"{METHOD_TITLE[r.method]}: {_strength_choice_text(r, _shown_variants(r))}"
                                     for r in all_results) + ".",
                           "Median over the samples the attack fooled."
                           + _error_bar_text(*all_results)])
        return save_figure(fig, stem)


# --------------------------------------------------------------------------- figure 4

def _sparsity_panel(ax, results, metric, variants, labelled_layers):
    for v in variants:
        stat = metric.stat(v)
        if stat.mean is None:
            continue
        x, y = 100 * v.own_sparsity.mean, metric.scaled(stat.mean)
        ax.plot([x], [y], color=LAYER_COLORS[v.layer], marker=LAYER_MARKERS[v.layer], markersize=5.5,
                linestyle="none")
        if v.layer in labelled_layers:
            ax.annotate(f"{v.strength:g}", (x, y), xytext=(4, 3), textcoords="offset points", fontsize=6.5,
                        color=LAYER_COLORS[v.layer])
    baseline = results.baseline
    base = metric.stat(baseline) if baseline else None
    if base and base.mean is not None:
        y = metric.scaled(base.mean)
        ax.axhline(y, color=BASELINE_COLOR, linestyle="--", linewidth=1)
        for layer in {v.layer for v in variants}:
            stat = baseline.sparsity.get(layer)
            if stat and stat.mean is not None:
                ax.plot([100 * stat.mean], [y], marker=LAYER_MARKERS[layer], markersize=8, linestyle="none",
                        markerfacecolor="none", markeredgecolor=LAYER_COLORS[layer], markeredgewidth=1.4)
    ax.set_title(metric.panel_title)
    ax.set_xlabel("sparsity of the regularised layer (% exact zeros)")
    ax.set_ylabel(metric.unit)
    if not metric.percent:
        ax.set_ylim(bottom=0)
    ax.set_xlim(-3, 103)


def plot_robustness_vs_sparsity(results, stem):
    """Figure 4: robustness against the measured sparsity of the regularised layer, one point per variant."""
    variants = [v for v in results.variants if not v.is_baseline and v.own_sparsity.mean is not None]
    pgd = ["pgd"] if "pgd" in results.attacks else []
    metrics = ([success_rate(k) for k in pgd] + [robust_acc(k) for k in pgd]
               + [median_queries(k) for k in nes_keys(results.attacks, "untargeted")])
    metrics = [m for m in metrics if any(m.stat(v).mean is not None for v in variants)]
    if not variants or not metrics:
        return []
    layers = [layer for layer in results.layers if any(v.layer == layer for v in variants)]
    # Layers with one strength are named with it in the legend; swept layers get the strength beside each point.
    swept = {layer for layer in layers if sum(v.layer == layer for v in variants) > 1}
    ncols = min(2, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    with figure_style():
        fig = new_figure(4.6 * ncols + 2.2, 3.5 * nrows + 1.2)
        axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
        for ax, metric in zip(axes, metrics):
            _sparsity_panel(ax, results, metric, variants, swept)
        _hide_empty(axes, len(metrics))
        handles = [_layer_handle(layer, layer if layer in swept else
                                 f"{layer} ({strength_text(results.method, results.at_layer(layer)[0].strength)})")
                   for layer in layers]
        if results.baseline:
            handles += [Line2D([], [], color=BASELINE_COLOR, linestyle="--", label=BASELINE_LABEL),
                        Line2D([], [], color=BASELINE_COLOR, marker="o", markerfacecolor="none", linestyle="none",
                               label="standard, sparsity of\nthe same layer (hollow)")]
        _side_legend(fig, handles)
        fig.suptitle(f"{METHOD_TITLE[results.method]}: robustness against measured activation sparsity "
                     f"(means over seeds {', '.join(map(str, results.seeds))})", fontsize=10)
        add_footnote(fig, _absent_note(results, ["pgd"] + expected_nes_keys("untargeted")) + [
            "Filled: one point per regularised variant (number beside it = strength); sparsity measured on the test "
            "set at the regularised layer. Hollow: the standard model at that same layer's sparsity, on its dashed",
            "line, so the step from a layer's hollow marker to its filled ones is what regularising that layer "
            "changed. NES: untargeted, median over fooled samples. Y axes are zoomed to the data."])
        return save_figure(fig, stem)
