"""Figures 2, 4 and 5 of ``main.py --mode vis``: lines through the arms over a continuous x (strength, measured
sparsity, eps), mean ± SD over seeds; what they read and their footnotes come from ``vis.figures``."""
from matplotlib.lines import Line2D

from attacks.base import WHITE_BOX
from vis.figures import (CLEAN_ACC, EPS_STAR_NOTE, NORMS, OWN_SPARSITY, footnote, metrics_of, range_text,
                         seeds_text)
from vis.render import (BASELINE_COLOR, MARKERS, NOT_LEARNED_COLOR, add_footnote, eps_axis, figure_style,
                        layer_style, new_figure, panel_grid, save_figure)

BASELINE_LABEL = "standard (no regularisation)"
NOT_LEARNED_LABEL = "did not learn (near chance; not compared)"


def _line(ax, results, layer, points, metric):
    """One layer's arms ``[(x, arm)]`` joined in order of x, ± SD over seeds; an 'x' on the axis for one that did
    not learn."""
    color, marker = layer_style(layer, results.layer_names)
    drawn = sorted((x, metric.value(arm)) for x, arm in points if arm.learned and metric.value(arm).mean is not None)
    if drawn:
        ax.errorbar([x for x, _ in drawn], [metric.scaled(s.mean) for _, s in drawn],
                    yerr=[metric.scaled(s.std) or 0.0 for _, s in drawn], color=color, marker=marker, markersize=4.5,
                    capsize=2, linewidth=1.2)
    failed = [x for x, arm in points if not arm.learned]
    if failed:
        ax.plot(failed, [0.02] * len(failed), linestyle="none", marker="x", color=NOT_LEARNED_COLOR, markersize=7,
                transform=ax.get_xaxis_transform(), clip_on=False)


def _baseline_line(ax, results, metric, layers=()):
    """Dashed: the standard model's value (for the sparsity of the regularised layer: its own, per layer)."""
    base = results.baseline
    if base is None or not base.learned:
        return
    for layer in layers if metric is OWN_SPARSITY else [None]:
        stat = base.sparsity(layer) if layer else metric.value(base)
        color = layer_style(layer, results.layer_names)[0] if layer else BASELINE_COLOR
        if stat.mean is not None:
            ax.axhline(metric.scaled(stat.mean), color=color, linestyle="--", linewidth=1)


# --------------------------------------------------------------------------- figures 2 and 4

def _against(results, stem, layers, x_of, metrics, x_axis, title, note):
    """One panel per metric with a value, one line per layer through its arms at ``x_of(arm)`` (None: not placed),
    mean ± SD over seeds; dashed: the standard model."""
    arms = [arm for layer in layers for arm in results.at_layer(layer) if x_of(arm) is not None]
    empty = [m.title for m in metrics if all(m.value(arm).mean is None for arm in arms)]
    metrics = [m for m in metrics if m.title not in empty]
    if not arms or not metrics:
        return []
    with figure_style():
        fig, axes = panel_grid(len(metrics), 4, (3.2, 3.0), (2.2, 1.6))
        for ax, metric in zip(axes, metrics):
            for layer in layers:
                _line(ax, results, layer, [(x_of(arm), arm) for arm in arms if arm.spec.layer == layer], metric)
            _baseline_line(ax, results, metric, layers)
            ax.set_title(metric.title.replace(": ", "\n", 1) + ("\n(dashed: standard, same layer)"
                                                                 if metric is OWN_SPARSITY else ""), fontsize=9)
            ax.set(ylabel="%" if metric.percent else "queries",
                   ylim=(-3, 109) if metric.percent else (0, 1.1 * ax.get_ylim()[1]))
            x_axis(ax)
        handles = [Line2D([], [], color=color, marker=marker, label=layer)
                   for layer in layers for color, marker in [layer_style(layer, results.layer_names)]]
        if results.baseline:
            handles.append(Line2D([], [], color=BASELINE_COLOR, linestyle="--", label=BASELINE_LABEL))
        if any(not arm.learned for arm in arms):
            handles.append(Line2D([], [], color=NOT_LEARNED_COLOR, marker="x", linestyle="none",
                                  label=NOT_LEARNED_LABEL))
        fig.legend(handles=handles, loc="outside right center", frameon=False, title="regularised layer")
        fig.suptitle(f"{results.method.title}: {title} ({seeds_text(results)})", fontsize=10)
        add_footnote(fig, footnote(results, results.keys(targeted=False), [note] + [
            f"Not drawn, no value at any point: {title}." for title in empty]))
        return save_figure(fig, stem)


def plot_strength_sweep(results, stem):
    """Figure 2: clean and robust accuracy, median queries and sparsity against strength, per swept layer."""
    layers = [layer for layer in results.layers if len(results.at_layer(layer)) > 1]
    strengths = [arm.spec.strength for layer in layers for arm in results.at_layer(layer)]
    method = results.method

    def x_axis(ax):
        ax.set_xlabel(method.strength_label + (" (log scale)" if method.log_scale else ""))
        positive = [s for s in strengths if s > 0]
        if method.log_scale and len(positive) == len(strengths):
            ax.set_xscale("log")
        elif method.log_scale:  # a strength of 0 has no place on a log axis: linear around zero, log beyond
            ax.set_xscale("symlog", linthresh=min(positive, default=1.0))

    return _against(results, stem, layers, lambda arm: arm.spec.strength,
                    [CLEAN_ACC, *metrics_of(results, "robust_acc", "median_queries_correct"), OWN_SPARSITY], x_axis,
                    "metrics against strength, per regularised layer", "Robust accuracy over all n attacked images; "
                    "queries: each model's median over the images that were correct and then fooled.")


def plot_robustness_vs_sparsity(results, stem):
    """Figure 4: robust accuracy and median queries against the measured sparsity of the regularised layer."""
    return _against(results, stem, results.layers, lambda arm: 100 * arm.own_sparsity.mean if arm.learned else None,
                    metrics_of(results, "robust_acc", "median_queries_correct"),
                    lambda ax: ax.set(xlim=(-3, 103), xlabel="sparsity of its layer (% exact zeros)"),
                    "robustness against measured activation sparsity",
                    "One point per arm: the mean over its seeds ± SD at its seeds' mean sparsity (exact zeros on the "
                    "test set at the regularised layer); a layer's arms joined in order of sparsity.")


# --------------------------------------------------------------------------- figure 5

def _curve_panel(ax, results, norm):
    """Per learned arm, the mean over seeds of each seed's robust accuracy read off its eps*, ± SD; on L-inf the
    --eps-sweep points of the white-box attacks. Returns ``(handles, censored)``."""
    factor, unit = eps_axis(results.dataset, norm)
    swept = results.keys(targeted=False, threat_model=WHITE_BOX) if norm == "linf" else []
    handles, censored, reach = [], [], []
    for arm in results.arms:
        color = layer_style(arm.spec.layer, results.layer_names)[0] if arm.spec.layer else BASELINE_COLOR
        curve = arm.eps_star_curve(norm)
        if curve:
            xs, ys = [factor * eps for eps, _ in curve], [100 * stat.mean for _, stat in curve]
            sds = [100 * (stat.std or 0.0) for _, stat in curve]
            siblings = [a.spec for a in results.at_layer(arm.spec.layer)]
            style = ("-", "--", ":", "-.")[siblings.index(arm.spec) % 4 if arm.spec.layer else 0]
            entries = [record.minimal[norm] for record in arm.records if norm in record.minimal]
            (line,) = ax.plot(xs, ys, color=color, linestyle=style, linewidth=1.3,
                              label=f"{arm.spec.label}, {len(entries)} seed(s), n = {range_text(e.n for e in entries)}")
            ax.fill_between(xs, [y - s for y, s in zip(ys, sds)], [y + s for y, s in zip(ys, sds)], color=color,
                            alpha=0.12, linewidth=0)
            handles.append(line)
            reach.append(next(x for x, y in zip(xs, ys) if y <= ys[-1]))
            if any(e.n_censored for e in entries):  # never fooled within the limit: the curve beyond is unknown
                ax.plot([xs[-1]], [ys[-1]], marker=">", color=color, linestyle="none", markersize=5)
                censored.append(f"{arm.spec.label} {range_text(e.n_censored for e in entries)} per seed")
        for marker, key in zip(MARKERS[1:], swept):
            points = [(factor * eps, stat) for eps, stat in arm.sweep_curve(key).items()]
            if points:
                ax.errorbar([e for e, _ in points], [100 * s.mean for _, s in points], linestyle=":", linewidth=0.7,
                            yerr=[100 * (s.std or 0.0) for _, s in points], color=color, marker=marker,
                            markersize=4, capsize=2, markerfacecolor="white")
    for value in results.eps if norm == "linf" else ():
        ax.axvline(factor * value, color="0.5", linestyle=":", linewidth=0.9)
    if reach and not censored:  # every image fooled below the limit: show where the curves fall
        ax.set_xlim(-0.02 * max(reach), 1.1 * max(reach + [factor * e for e in results.eps if norm == "linf"]))
    ax.set(title=f"{NORMS[norm]}: robust accuracy read off eps*", xlabel=f"eps ({unit}), {NORMS[norm]}",
           ylim=(-3, 103))
    return handles, censored


def plot_robustness_curves(results, stem):
    """Figure 5: robust accuracy against eps read off each model's eps* (the fraction of its images whose eps*
    exceeds eps), mean ± SD over seeds, one panel per norm, one line per arm."""
    swept = [results.attacks[k].title for k in results.keys(targeted=False, threat_model=WHITE_BOX)
             if any(arm.sweep_curve(k) for arm in results.arms)]
    norms = results.norms() or (["linf"] if swept else [])
    if not norms:
        return []
    with figure_style():
        fig = new_figure(max(8.0, 4.6 * len(norms) + 4.0), 4.6)
        axes = fig.subplots(1, len(norms), squeeze=False, sharey="row")[0]
        panels = [_curve_panel(ax, results, norm) for ax, norm in zip(axes, norms)]
        axes[0].set_ylabel("robust accuracy (%) = 100 - CDF of eps*")
        handles = {handle.get_label(): handle for panel, _ in panels for handle in panel}
        fig.legend(handles=list(handles.values()), loc="outside right center", frameon=False, title="arm")
        fig.suptitle(f"{results.method.title}: robust accuracy against eps, read off each model's smallest fooling "
                     f"perturbations\n{seeds_text(results)}", fontsize=10)
        add_footnote(fig, footnote(results, [], [
            f"{EPS_STAR_NOTE} Lines: per eps the mean over seeds of each model's fraction of images with eps* "
            "above it; bands: ± sample SD over seeds.",
            "Each curve ends at the search limit; '>' marks images never fooled within it (censored), counted as "
            "robust up to the limit: " + ("; ".join(c for _, cs in panels for c in cs) or "none") + ".",
            "Dotted vertical line: the attacks' eps." + (f" Open markers (dotted): --eps-sweep robust accuracy of "
                                                         f"{', '.join(swept)}." if swept else "")]))
        return save_figure(fig, stem)
