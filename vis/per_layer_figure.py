"""The per-layer figure: the original repository's per-layer plot with the seed as the unit.

One column per sparsity method (L1, dropout), one row per measure: the median eps* over correctly classified images
(the primary statistic), and the original's PGD and NES success rates and NES median queries at the attacks' eps.
The regularised layer on the x axis, one point per trained model (seed), its mean as a bar; the positive control at
the right; the standard baseline's seeds as a band (min to max) and its mean as a line across every layer.
"""
import math

from vis.render import BASELINE_COLOR, add_footnote, eps_axis, figure_style, new_figure, save_figure
from vis.study_figure import ARM_COLOR, CONTROL_COLOR

METHODS = ("l1", "dropout")


def _attack_value(key_prefix, field):
    """One seed's ``field`` of its first run whose key starts with ``key_prefix`` (the adaptive NES is another run)."""
    def value(record):
        key = next((k for k in record.attacks if k.startswith(key_prefix) and "adaptive" not in k), None)
        return None if key is None else record.attacks[key].numbers().get(field)
    return value


ROWS = (("median eps* over\ncorrect images", lambda record: None, "eps_star_correct"),
        ("PGD success rate (%)\n(initially correct)", _attack_value("pgd", "success_rate_correct"), None),
        ("NES success rate (%)\n(initially correct)", _attack_value("nes", "success_rate_correct"), None),
        ("NES median queries\n(successful images)", _attack_value("nes", "median_queries_correct"), None))


def _values(arm, value, statistic):
    found = arm.values[statistic] if statistic else tuple(value(record) for record in arm.records)
    return [v for v in found if v is not None and math.isfinite(v)]


def _scale(label, factor):
    return factor if label.startswith("median eps") else 100.0 if "rate" in label else 1.0


def _points(ax, x, values, color):
    offsets = [0.0] if len(values) == 1 else [0.3 * (i / (len(values) - 1) - 0.5) for i in range(len(values))]
    ax.plot([x + o for o in offsets], values, linestyle="none", marker="o", markersize=3.5, color=color)
    if values:
        mean = sum(values) / len(values)
        ax.plot([x - 0.22, x + 0.22], [mean, mean], color=color, linewidth=1.5)


def per_layer_figure(results, layers):
    """The figure (a matplotlib Figure) of ``results`` (``analysis.comparisons.StudyResults``): every arm of a
    method at ``layers``, the standard baseline and the positive control."""
    standard = next(arm for arm in results.arms if arm.spec.is_baseline and arm.spec.adv is None)
    control = next((arm for arm in results.arms if arm.spec.is_baseline and arm.spec.adv is not None), None)
    factor, unit = eps_axis(results.dataset, "linf")
    with figure_style():
        fig = new_figure(9.5, 10.0)
        axes = fig.subplots(len(ROWS), len(METHODS), sharex=True, sharey="row", squeeze=False)
        for row, (label, value, statistic) in enumerate(ROWS):
            scale = _scale(label, factor)
            base = [scale * v for v in _values(standard, value, statistic)]
            for column, method in enumerate(METHODS):
                ax = axes[row][column]
                if base:
                    ax.axhspan(min(base), max(base), color=BASELINE_COLOR, alpha=0.12, linewidth=0)
                    ax.axhline(sum(base) / len(base), color=BASELINE_COLOR, linewidth=0.8, linestyle="--")
                for x, layer in enumerate(layers):
                    arm = next((a for a in results.arms if a.spec.method == method and a.spec.layer == layer
                                and a.spec.adv is None), None)
                    if arm is not None:
                        _points(ax, x, [scale * v for v in _values(arm, value, statistic)], ARM_COLOR)
                if control is not None:
                    _points(ax, len(layers), [scale * v for v in _values(control, value, statistic)], CONTROL_COLOR)
                if row == 0:
                    ax.set_title({"l1": "L1 at the layer", "dropout": "dropout at the layer"}[method])
                if column == 0:
                    ax.set_ylabel(label + (f" ({unit})" if statistic else ""))
                ax.set_xticks(range(len(layers) + 1), [*layers, "AT control"])
        seeds = sorted({len(arm.seeds) for arm in results.arms})
        eps = sorted({c.get("eps") for arm in results.arms for c in arm.eval_configs if c.get("eps")})
        fig.suptitle(f"{results.dataset.title}: sparsity at each layer against the standard baseline, one point per "
                     f"trained model ({' or '.join(map(str, seeds))} seeds)", fontsize=10)
        add_footnote(fig, [
            f"Points: one trained model (seed) each; bar: their mean. Grey band and dashed line: the standard "
            f"baseline's seeds (min to max, mean). Green: the positive control (adversarial training). eps*: per image "
            f"the least over FAB, the APGD bisection and every attack run, median over the model's correctly "
            f"classified images. Success rates at eps {', '.join(f'{e:g}' for e in eps)} over each model's initially "
            f"correct images. The verdicts are comparisons.csv's (seed-level, Holm over the arms)."])
    return fig


def plot_per_layer(results, layers, stem):
    """Writes ``stem.png`` and ``stem.pdf`` of ``per_layer_figure``; returns their paths."""
    with figure_style():
        return save_figure(per_layer_figure(results, layers), stem)
