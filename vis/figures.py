"""Figures 1, 3, 6 and 7 of ``main.py --mode vis`` (2, 4, 5: ``vis.curves``), each of one method's arms beside the
baseline, and what every figure reads. Figures only draw: each number is one seed's or a mean ± SD over seeds."""
import math
from dataclasses import dataclass, replace

from matplotlib.patches import Patch

from analysis.arms import MISSING, Stat, group_arms
from data.registry import get_dataset
from records.parts import QUERY_FIELDS
from sparsity.methods import get_method
from vis.render import (BASELINE_COLOR, MARKERS, NOT_LEARNED_COLOR, add_footnote, eps_axis, figure_style,
                        layer_style, new_figure, panel_grid, save_figure)

NORMS = {"linf": "L-inf", "l2": "L2"}
SERIES_COLORS = ("tab:blue", "tab:red", "tab:orange", "tab:purple", "tab:green", "tab:olive", "tab:cyan",
                 "tab:brown", "tab:pink", "tab:gray")
EPS_STAR_NOTE = ("eps*: per image the least of FAB's, the bisection's and every attack run's smallest fooling "
                 "perturbation (0 where misclassified clean).")
WORST_CASE_NOTE = ("Worst case: an image counts as robust only if every attack run on it failed (and its L-inf eps* "
                   "exceeds eps, where measured); over all n, the query-based attacks on their subset.")


@dataclass(frozen=True)
class MethodArms:
    """One sparsity method's arms (standard training) beside the standard baseline's, as ``group_arms`` made them."""

    method: object  # sparsity.base.SparsityMethod
    dataset: object  # data.dataset.Dataset
    layer_names: tuple
    arms: tuple  # analysis.arms.Arm, the baseline first
    attacks: dict  # run key -> its AttackResult in the first record (title, threat model, targeted, queries)
    eval_configs: tuple

    @classmethod
    def of(cls, method, records):
        attacks = {}
        for record in records:
            for key, entry in record.attacks.items():
                attacks.setdefault(key, entry)
        configs = {repr(record.eval_config): record.eval_config for record in records}
        return cls(get_method(method), get_dataset(records[0].spec.dataset), tuple(records[0].layer_names),
                   tuple(group_arms(records)), attacks, tuple(configs.values()))

    @property
    def baseline(self):
        return next((arm for arm in self.arms if arm.spec.is_baseline), None)

    @property
    def variants(self):
        return [arm for arm in self.arms if not arm.spec.is_baseline]

    def at_layer(self, layer):
        return [arm for arm in self.variants if arm.spec.layer == layer]

    @property
    def layers(self):
        return [layer for layer in self.layer_names if self.at_layer(layer)]

    def shown(self):
        """The baseline, then per layer the arm at the default strength, else the closest evaluated one (in decades
        for a method on a log scale)."""
        method = self.method

        def distance(arm):
            if method.log_scale:
                return abs(math.log10(max(arm.spec.strength, 1e-12)) - math.log10(method.default_strength))
            return abs(arm.spec.strength - method.default_strength)

        per_layer = [min(self.at_layer(layer), key=lambda arm: (distance(arm), arm.spec.strength))
                     for layer in self.layers]
        return ([self.baseline] if self.baseline else []) + per_layer

    def keys(self, targeted=None, queries=None, threat_model=None):
        return [key for key, entry in self.attacks.items() if targeted in (None, entry.targeted)
                and queries in (None, entry.counts_queries) and threat_model in (None, entry.threat_model)]

    def norms(self):
        return [norm for norm in NORMS if any(norm in r.minimal for arm in self.arms for r in arm.records)]

    @property
    def eps(self):
        return sorted({config["eps"] for config in self.eval_configs if config.get("eps")})


@dataclass(frozen=True)
class Metric:
    """A plotted quantity: its title, the key of its colour and its value for an arm (a ``Stat`` over seeds)."""

    title: str
    series: str
    value: object  # Arm -> Stat
    percent: bool = True
    attack: str | None = None

    def scaled(self, value):
        return None if value is None else 100 * value if self.percent else value


CLEAN_ACC = Metric("clean accuracy", "clean_acc", lambda arm: arm.clean_acc)
WORST_CASE = Metric("robust accuracy, worst case per image over every attack", "worst_case", lambda arm: arm.worst_case)
OWN_SPARSITY = Metric("sparsity of the regularised layer", "own_sparsity", lambda arm: arm.own_sparsity)
QUANTITIES = {"robust_acc": "robust accuracy", "success_rate_correct": "success, initially correct (%)",
              "median_queries_correct": "median queries (fooled & correct)"}


def attack_metric(results, key, field):
    def value(arm):
        run = arm.attack(key)
        return run.get(field) if run else MISSING
    return Metric(f"{results.attacks[key].title}: {QUANTITIES[field]}", key, value, field not in QUERY_FIELDS, key)


def metrics_of(results, *fields):
    """The metric of each untargeted attack for each of ``fields`` (queries: only of attacks that count them)."""
    return [attack_metric(results, key, field) for field in fields for key in results.keys(targeted=False)
            if field not in QUERY_FIELDS or results.attacks[key].counts_queries]


# --------------------------------------------------------------------------- shared pieces

def range_text(values):
    values = sorted(set(values))
    return "-" if not values else str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def settings_text(settings):
    """An attack's settings as footnotes and tables write them: ``eps 0.03137, steps 50``."""
    return ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                     for key, value in settings.items() if value is not None)


def seeds_text(results):
    seeds = sorted({seed for arm in results.arms for seed in arm.all_seeds})
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"mean ± sample SD over seeds {', '.join(map(str, seeds))}"


def footnote(results, keys, extra=()):
    """What every figure states: the data set, images per attack and its settings, eps, the seeds, what did not
    learn, and whether it is a --quick pipeline check."""
    lines = [*extra, f"Data set: {results.dataset.title} (test images)."]
    for key in keys:
        entry = results.attacks[key]
        ns = [n for arm in results.arms if arm.attack(key) for n in arm.attack(key).n]
        counts = f"n = {range_text(ns)} images per model; " if ns else ""  # none where no model that ran it learned
        lines.append(f"{entry.title}: {counts}{settings_text(entry.settings)}.")
    lines.append(f"eps = {', '.join(results.dataset.format_eps(e) for e in results.eps) or '-'} (L-inf); "
                 f"{seeds_text(results)}; error bars and bands: sample SD over seeds where there are several.")
    not_learned = [f"{arm.spec.label} (seed {', '.join(map(str, arm.not_learned_seeds))})"
                   for arm in results.arms if arm.not_learned_seeds]
    if not_learned:
        lines.append("Did not learn (clean accuracy near chance), left out of every value: " + "; ".join(not_learned)
                     + ".")
    if any(config.get("quick") for config in results.eval_configs):
        lines.append("--quick: a pipeline check on few images with short training and attacks, not a finding.")
    return lines


def attack_palette(*all_results):
    """One colour per attack, the same in every figure; clean accuracy grey, the worst case black."""
    keys = dict.fromkeys(key for results in all_results for key in results.attacks)
    return {CLEAN_ACC.series: "0.45", WORST_CASE.series: "black",
            **{key: SERIES_COLORS[i % len(SERIES_COLORS)] for i, key in enumerate(keys)}}


def _tick(arm):
    return "standard" if arm.spec.is_baseline else f"{arm.spec.layer}\n{arm.spec.label.split('(')[1].rstrip(')')}"


def _arm_axis(ax, arms, ticks=None):
    ax.set_xticks(range(len(arms)), ticks or [_tick(arm) for arm in arms])
    ax.set_xlim(-0.6, len(arms) - 0.4)
    if arms and arms[0].spec.is_baseline:
        ax.axvline(0.5, color="0.5", linestyle=":", linewidth=1)


def _foot(ax, x, text, color="0.4"):
    """A note at the foot of a bar's place (linear or log axis)."""
    ax.text(x, 0.01, f" {text}", rotation=90, ha="center", va="bottom", fontsize=6.5, color=color,
            transform=ax.get_xaxis_transform())


def _bars(ax, palette, arms, metrics, note=None):
    """One group per arm, one bar per metric: the mean over seeds ± SD with its value on top (``note(metric, arm)``:
    more text for it); an arm that did not learn, or lacks a value, says so at the foot. Legend handles."""
    width = 0.8 / len(metrics)
    for x, arm in enumerate(arms):
        if not arm.learned:
            _foot(ax, x, "did not learn", NOT_LEARNED_COLOR)
    for i, metric in enumerate(metrics):
        offset = (i - (len(metrics) - 1) / 2) * width
        xs, heights, errors, texts = [], [], [], []
        for x, arm in enumerate(arms):
            stat = metric.value(arm) if arm.learned else None
            if stat is None:
                continue
            if stat.mean is None:
                _foot(ax, x + offset, "not run" if metric.attack and not arm.attack(metric.attack) else "none fooled")
                continue
            xs.append(x + offset)
            heights.append(metric.scaled(stat.mean))
            errors.append(metric.scaled(stat.std) or 0.0)
            extra = note(metric, arm) if note else None
            texts.append(f"{heights[-1]:.{1 if metric.percent else 0}f}" + (f" ({extra})" if extra else ""))
        bars = ax.bar(xs, heights, width, yerr=errors if any(errors) else None, color=palette[metric.series],
                      capsize=2, error_kw={"elinewidth": 0.8})
        ax.bar_label(bars, labels=texts, fontsize=6, padding=2, rotation=90 if note or len(metrics) > 3 else 0)
    _arm_axis(ax, arms)
    return [Patch(color=palette[metric.series], label=metric.title) for metric in metrics]


def _choice_text(results):
    method, arms = results.method, results.shown()
    if all(arm.spec.strength == method.default_strength for arm in arms if not arm.spec.is_baseline):
        return f"default strength {method.strength_text(method.default_strength)} at every layer"
    return (f"strength under each layer: the default {method.strength_text(method.default_strength)} where "
            "evaluated, else the evaluated one closest to it")


# --------------------------------------------------------------------------- figure 1

def plot_per_layer(results, stem):
    """Figure 1: clean, worst-case and robust accuracy, and success over initially correct images, per layer."""
    shown = results.shown()
    if not shown:
        return []
    worst = [WORST_CASE] if any(arm.worst_case.mean is not None for arm in shown) else []
    accuracies = [CLEAN_ACC, *worst, *metrics_of(results, "robust_acc")]
    panels = (("Accuracy (robust: over all n)", "accuracy (%)", accuracies),
              ("Untargeted attack success over the initially correct images", "success (%)",
               metrics_of(results, "success_rate_correct")))
    with figure_style():
        fig = new_figure(max(8.0, (0.7 + 0.25 * len(panels[1][2])) * len(shown) + 3.5), 7.0)
        axes = fig.subplots(2, 1)
        for ax, (title, ylabel, metrics) in zip(axes, panels):
            ax.set_title(title, loc="left")
            ax.set(ylabel=ylabel, ylim=(0, 118))
            if metrics:
                ax.legend(handles=_bars(ax, attack_palette(results), shown, metrics), loc="center left",
                          bbox_to_anchor=(1.01, 0.5), frameon=False)
            else:
                ax.text(0.5, 0.5, "no untargeted attack was evaluated", transform=ax.transAxes, ha="center")
                _arm_axis(ax, shown)
        axes[1].set_xlabel("regularised layer (standard = no regularisation)", loc="left")
        fig.suptitle(f"{results.method.title} at one layer: accuracy and robustness per layer\n"
                     f"{_choice_text(results)}; {seeds_text(results)}", fontsize=10)
        add_footnote(fig, footnote(results, results.keys(targeted=False), [WORST_CASE_NOTE]))
        return save_figure(fig, stem)


# --------------------------------------------------------------------------- figure 3

def _fooled(metric, arm):
    """How many images each seed's median is over: those fooled among the correct (a range where seeds differ)."""
    run = arm.attack(metric.attack) if metric.attack else None
    return f"n {range_text(run.n_fooled_correct)}" if run else None


def _query_panel(ax, palette, results, arms, keys):
    """Bars of each query attack's median queries (fooled & correct), mean over seeds, on a log axis."""
    metrics = [replace(attack_metric(results, key, "median_queries_correct"), title=results.attacks[key].title)
               for key in keys]
    ax.set_ylabel("median queries (fooled & correct), log scale")
    return _bars(ax, palette, arms, metrics, note=_fooled)


def _log_axis(axes):
    """One log y axis from 1 query to room above the tallest bar for its label; no ticks without a bar."""
    tops = [ax.dataLim.y1 for ax in axes if ax.has_data() and math.isfinite(ax.dataLim.y1) and ax.dataLim.y1 > 0]
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylim(1, max(tops) * 40 if tops else 10)
        if not tops:
            ax.set_yticks([])


def _goals(results):
    goals = {goal: results.keys(targeted=goal == "targeted", queries=True) for goal in ("untargeted", "targeted")}
    return {goal: keys for goal, keys in goals.items() if keys}


QUERY_NOTE = ("Bars: mean over seeds of each model's median queries over the images it classified correctly and "
              "that were then fooled; in brackets n, how many such images each model had (a range where seeds "
              "differ). Higher = more queries needed = harder to attack.")


def _query_figure(all_results, stem, title, notes):
    """Untargeted and targeted rows of query bars, one column per method, one log y scale per row."""
    goals = [goal for goal in ("untargeted", "targeted") if any(goal in _goals(r) for r in all_results)]
    palette, handles, first = attack_palette(*all_results), {}, all_results[0]
    widest = max(len(results.shown()) for results in all_results)
    with figure_style():
        fig = new_figure(min(18.0, max(8.0, 0.9 * widest * len(all_results) + 4.5)), 3.4 * len(goals) + 1.8)
        axes = fig.subplots(len(goals), len(all_results), squeeze=False, sharey="row")
        for col, results in enumerate(all_results):
            for ax, goal in zip(axes[:, col], goals):
                keys = _goals(results).get(goal)
                if keys:
                    drawn = _query_panel(ax, palette, results, results.shown(), keys)
                    handles.update((handle.get_label(), handle) for handle in drawn)
                else:
                    ax.text(0.5, 0.5, f"no {goal} query-based attack", transform=ax.transAxes, ha="center")
                ax.set_title(f"{results.method.title if len(all_results) > 1 else 'Query-based attacks'}: {goal}",
                             loc="left")
                ax.set_ylabel(ax.get_ylabel() if col == 0 else "")
        for row in axes:
            _log_axis(list(row))
        fig.legend(handles=list(handles.values()), loc="outside right center", frameon=False)
        fig.suptitle(title, fontsize=10)
        add_footnote(fig, notes + [QUERY_NOTE] + footnote(first, [k for keys in _goals(first).values() for k in keys]))
        return save_figure(fig, stem)


def plot_queries(results, stem):
    """Figure 3: median queries of the query-based attacks per arm, untargeted and targeted panels."""
    if not _goals(results) or not results.shown():
        return []
    return _query_figure([results], stem, f"{results.method.title}: queries to a successful black-box attack\n"
                                          f"{_choice_text(results)}; {seeds_text(results)}", [])


def plot_queries_by_method(all_results, stem):
    """Figure 3 of every method side by side (the original repository's L1 vs dropout)."""
    all_results = [results for results in all_results if _goals(results) and results.shown()]
    if len(all_results) < 2:
        return []
    return _query_figure(all_results, stem, "Queries to a successful black-box attack, per regularised layer: "
                         + " vs ".join(r.method.title for r in all_results),
                         ["; ".join(f"{r.method.title}: {_choice_text(r)}" for r in all_results) + "."])


# --------------------------------------------------------------------------- figures 6 and 7: eps* per model

def _seed_points(ax, xs, values, limit, color, marker="o", filled=True):
    """One marker per seed at its median eps*; a censored one (inf) as an open triangle at the search limit."""
    for x, value in zip(xs, values):
        if value is not None:
            censored = math.isinf(value)
            ax.plot([x], [limit if censored else value], linestyle="none", marker="^" if censored else marker,
                    markersize=4.5, color=color, markerfacecolor=color if filled and not censored else "white")


def _band(ax, values, color=BASELINE_COLOR):
    """The baseline's seeds: their spread (min to max) as a band, their mean dashed."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if finite:
        ax.axhspan(min(finite), max(finite), color=color, alpha=0.12, linewidth=0)
        ax.axhline(sum(finite) / len(finite), color=color, linestyle="--", linewidth=1)


def _eps_star_axis(ax, values, limit):
    """y from 0 to room above the highest point; the search limit dash-dot where a median is censored."""
    drawn = [limit if math.isinf(v) else v for v in values if v is not None]
    ax.set_ylim(0, 1.15 * max(drawn, default=0) or limit)  # all at 0 (most images misclassified): up to the limit
    if any(math.isinf(v) for v in values if v is not None):
        ax.axhline(limit, color="0.5", linestyle="-.", linewidth=0.8)


def _eps_star_panel(ax, results, arms, norm, correct_only):
    factor, unit = eps_axis(results.dataset, norm)
    limit = factor * max(r.minimal[norm].limit for arm in arms for r in arm.records if norm in r.minimal)
    scaled = [[factor * v for v in arm.eps_star(norm, correct_only) if v is not None] for arm in arms]
    if arms[0].spec.is_baseline:
        _band(ax, scaled[0])
    for x, (arm, values) in enumerate(zip(arms, scaled)):
        if not values:
            _foot(ax, x, "not measured" if arm.learned else "did not learn")
            continue
        color = layer_style(arm.spec.layer, results.layer_names)[0] if arm.spec.layer else BASELINE_COLOR
        offsets = [0.0] if len(values) == 1 else [0.3 * (i / (len(values) - 1) - 0.5) for i in range(len(values))]
        _seed_points(ax, [x + o for o in offsets], values, limit, color)
        if all(map(math.isfinite, values)):
            ax.plot([x - 0.25, x + 0.25], [Stat.of(values).mean] * 2, color=color, linewidth=1.5)
    _eps_star_axis(ax, [v for values in scaled for v in values], limit)
    over = "over correctly classified images" if correct_only else "over all images (secondary: 0 if misclassified)"
    ax.set(title=f"{NORMS[norm]}: median eps* {over}", ylabel=f"eps* ({unit})")


def plot_eps_star_per_layer(results, stem):
    """Figure 6: per arm (the baseline, one strength per layer) each model's median eps*, over its correctly
    classified images (top) and all its images (bottom), beside the baseline's seeds (band)."""
    shown = results.shown()
    norms = [norm for norm in results.norms() if any(norm in r.minimal for arm in shown for r in arm.records)]
    if not norms:
        return []
    with figure_style():
        fig = new_figure(max(8.0, (0.75 * len(shown) + 1.5) * len(norms) + 1.0), 7.4)
        axes = fig.subplots(2, len(norms), squeeze=False)
        for column, norm in enumerate(norms):
            entries = [[r.minimal[norm] for r in arm.records if norm in r.minimal] for arm in shown]
            ticks = [_tick(arm) + (f"\n{len(e)} seed(s)\nn={range_text(x.n for x in e)}" if e else "")
                     + (f"\ncens. {range_text(x.n_censored for x in e)}" if any(x.n_censored for x in e) else "")
                     for arm, e in zip(shown, entries)]
            for row, correct_only in enumerate((True, False)):
                _eps_star_panel(axes[row, column], results, shown, norm, correct_only)
                _arm_axis(axes[row, column], shown, ticks)
        fig.suptitle(f"{results.method.title}: smallest fooling perturbation eps* per regularised layer, one point "
                     f"per trained model\n{_choice_text(results)}", fontsize=10)
        add_footnote(fig, [
            f"{EPS_STAR_NOTE} Points: one model (seed) each, its median over its own images (n per model, and "
            "its censored images, under each tick); bar: the mean over seeds. Band and dashed line: the standard "
            "model's seeds (min to max, mean). Open triangle at the search limit (dash-dot): a censored median (more "
            "than half of the model's images never fooled within the limit). No image is pooled across seeds."]
            + footnote(results, []))
        return save_figure(fig, stem)


def _dose_panel(ax, results, layer, arms, norm, limit):
    factor, unit = eps_axis(results.dataset, norm)
    base, drawn = results.baseline, []
    if base and base.learned:
        values = [None if v is None else factor * v for v in base.eps_star(norm)]
        _band(ax, values)
        _seed_points(ax, [100 * r.sparsity.get(layer, math.nan) for r in base.records], values, factor * limit,
                     BASELINE_COLOR, filled=False)
        drawn += values
    color = layer_style(layer, results.layer_names)[0]
    means = []
    for marker, arm in zip(MARKERS, sorted(arms, key=lambda arm: arm.spec.strength)):
        values = [None if v is None else factor * v for v in arm.eps_star(norm)]
        _seed_points(ax, [100 * r.sparsity.get(layer, math.nan) for r in arm.records], values, factor * limit,
                     color, marker)
        drawn += values
        ax.plot([], [], linestyle="none", marker=marker, color=color, label=results.method.strength_text(
            arm.spec.strength))
        if values and all(v is not None and math.isfinite(v) for v in values):
            means.append((100 * arm.sparsity(layer).mean, Stat.of(values).mean))
    if len(means) > 1:
        ax.plot([x for x, _ in means], [y for _, y in means], color=color, linewidth=0.8)
    ax.legend(fontsize=6.5, loc="best")
    _eps_star_axis(ax, drawn, factor * limit)
    ax.set(title=f"regularised at {layer}", xlabel=f"sparsity of {layer} (% exact zeros, test set)",
           ylabel=f"median eps*, correct images ({unit})", xlim=(-3, 103))


def plot_eps_star_vs_sparsity(results, stem, norm="linf"):
    """Figure 7, the dose-response: per trained model (seed), its median L-inf eps* over its correctly classified
    images against the measured sparsity of the regularised layer; the baseline's seeds (open circles, at their own
    sparsity of that layer, and their band) are what an effect must leave."""
    arms = [arm for arm in results.variants if any(norm in r.minimal for r in arm.records)]
    if not arms:
        return []
    layers = list(dict.fromkeys(arm.spec.layer for arm in arms))
    limit = max(r.minimal[norm].limit for arm in results.arms for r in arm.records if norm in r.minimal)
    with figure_style():
        fig, axes = panel_grid(len(layers), 3, (4.2, 3.4), (2.4 if len(layers) == 1 else 1.0, 1.8))
        for ax, layer in zip(axes, layers):
            _dose_panel(ax, results, layer, [arm for arm in arms if arm.spec.layer == layer], norm, limit)
        fig.suptitle(f"{results.method.title}: median eps* against the sparsity it reached,\none point per trained "
                     "model", fontsize=10)
        add_footnote(fig, [
            f"{EPS_STAR_NOTE} Filled markers: one model (seed) each, one shape per strength (legend); line: each "
            "strength's mean over seeds. Open circles, band and dashed line: the standard model's seeds at their own "
            "sparsity of the layer (min to max, mean). An open triangle at the search limit: a censored median."]
            + footnote(results, []))
        return save_figure(fig, stem)
