"""The study's overview figure: every arm beside its reference (whose seeds' spread is the band), one point per model,
with each arm's seed-level verdict on top, so the figure says nothing the comparisons table does not."""
import math

from analysis.comparisons import arm_label
from vis.render import BASELINE_COLOR, add_footnote, eps_axis, figure_style, new_figure, save_figure

PANELS = (("eps_star_correct", "median eps*\nover correct images"),
          ("robust_acc", "AutoAttack\nrobust accuracy (%)"),
          ("clean_acc", "clean accuracy (%)"))
CONTROL_COLOR = "tab:green"
ARM_COLOR = "tab:blue"
# where a reference's band is drawn: its arm's x position +- this
BAND_HALF_WIDTH = 0.38


def _arms(study):
    """The standard baseline, the adversarially trained ones (the control), then the other arms in table order."""
    return sorted(study.arms, key=lambda arm: not arm.spec.is_baseline)


def _color(arm):
    if arm.spec.is_baseline:
        return BASELINE_COLOR if arm.spec.adv is None else CONTROL_COLOR
    return ARM_COLOR


def _finite(values):
    return [v for v in values if v is not None and math.isfinite(v)]


def _panel(ax, study, statistic, title, factor):
    arms = _arms(study)
    scale = factor if statistic.startswith("eps_star") else 100.0
    for x, arm in enumerate(arms):
        reference = study.arm(arm.spec.reference) if arm.spec.reference else arm
        band = _finite(reference.values[statistic]) if reference is not None else []
        if band:
            ax.fill_between([x - BAND_HALF_WIDTH, x + BAND_HALF_WIDTH], scale * min(band), scale * max(band),
                            color=_color(reference), alpha=0.15, linewidth=0)
        values = _finite(arm.values[statistic])
        # the seeds side by side, so that equal values stay visible
        offsets = [0.0] if len(values) == 1 else [0.24 * (i / (len(values) - 1) - 0.5) for i in range(len(values))]
        ax.plot([x + o for o in offsets], [scale * v for v in values], linestyle="none", marker="o", markersize=4,
                color=_color(arm))
        if values:
            mean = sum(values) / len(values)
            ax.plot([x - 0.2, x + 0.2], [scale * mean, scale * mean], color=_color(arm), linewidth=1.5)
        missing = len(arm.values[statistic]) - len(values)
        if missing:  # a censored median or an unmeasured value: said, not dropped silently
            ax.annotate(f"{missing} not finite", (x, 0), textcoords="offset points", xytext=(0, 2), ha="center",
                        fontsize=6.5, color="0.4")
    ax.set_ylabel(title)
    ax.set_ylim(bottom=0)


def study_arms_figure(study):
    """The figure (a matplotlib Figure) of the study's arms beside their references, one point per model."""
    arms = _arms(study)
    factor, unit = eps_axis(study.dataset, "linf")
    # the verdicts on the primary statistic, eps* over correct images
    verdicts = {row["arm"]: row["verdict"] for row in study.rows if row["statistic"] == "eps_star_correct"}
    with figure_style():
        fig = new_figure(max(7.0, 1.05 * len(arms) + 2.0), 8.6)
        axes = fig.subplots(len(PANELS), 1, sharex=True)
        for ax, (statistic, title) in zip(axes, PANELS):
            _panel(ax, study, statistic, title + (f"\n({unit})" if statistic.startswith("eps_star") else ""),
                   factor)
            if not statistic.startswith("eps_star"):
                ax.set_ylim(0, 102)
        top = axes[0]
        for x, arm in enumerate(arms):
            label = arm_label(arm)
            if label in verdicts:
                top.annotate(verdicts[label], (x, 1.0), xycoords=("data", "axes fraction"), textcoords="offset points",
                             xytext=(0, 3), ha="center", fontsize=7, color="0.25")
        axes[-1].set_xticks(range(len(arms)), [arm_label(a).replace(" + ", "\n+ ") for a in arms], rotation=30,
                            ha="right")
        axes[-1].set_xlim(-0.6, len(arms) - 0.4)
        seeds = sorted({len(a.seeds) for a in arms})
        fig.suptitle(f"{study.dataset.title}: every arm beside its reference, one point per trained model "
                     f"({' or '.join(map(str, seeds))} seeds per arm)", fontsize=10)
        add_footnote(fig, [
            "Points: one trained model (seed) each; bar: their mean. Band: the spread (min to max over seeds) of the "
            "reference each arm is compared with: the standard baseline for the arms under standard training and for "
            "the adversarially trained baseline (the positive control, green), the control for an arm trained on top "
            "of it. Above the top panel: the arm's verdict on the median eps* over correct images (permutation test "
            "over seeds, Holm over the arms; comparisons.csv). eps*: per image the minimum over FAB, the APGD "
            "bisection and every attack run; robust accuracy: AutoAttack (standard) at the protocol's eps, over the "
            "evaluated images."])
    return fig


def plot_study_arms(study, stem):
    """``stem.png`` and ``stem.pdf`` of ``study_arms_figure``; [] where the study has no comparison."""
    if study is None or not study.rows:
        return []
    with figure_style():
        return save_figure(study_arms_figure(study), stem)
