"""Figure and summary table of the synthetic experiment (minimal flipping perturbation and sparsity vs strength)."""
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common.io import atomic_write_bytes  # noqa: E402

MEASURES = (
    ("flip_margin_set", "margin set (original)"),
    ("flip_theory_median", "theory direction (median)"),
    ("flip_attack_median", "l2 PGD (median)"),
)


def group_by_strength(runs):
    """{strength: [run, ...]} in increasing strength."""
    groups = {}
    for run in sorted(runs, key=lambda run: (run["strength"], run["seed"])):
        groups.setdefault(run["strength"], []).append(run)
    return groups


def mean_std(values):
    """Mean and population std over the finite values (None/inf are searches that found no flip); None if none."""
    finite = [value for value in values if value is not None and math.isfinite(value)]
    if not finite:
        return None, None
    mean = sum(finite) / len(finite)
    return mean, math.sqrt(sum((value - mean) ** 2 for value in finite) / len(finite))


def plot_synthetic(results, png_path, pdf_path):
    """Two panels against strength: the three flip measures (mean ± std over seeds) with reference
    lines at sqrt(d) and sqrt(d/m), and the hidden layer's activation sparsity."""
    config = results["config"]
    groups = group_by_strength(results["runs"])
    strengths = list(groups)
    positions = range(len(strengths))  # strengths include 0, so they are placed evenly and labelled

    figure, (flip_axis, sparsity_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for offset, (key, label) in zip((-0.1, 0.0, 0.1), MEASURES):
        stats = [mean_std([run[key] for run in groups[s]]) for s in strengths]
        shown = [(p + offset, mean, std) for p, (mean, std) in zip(positions, stats) if mean is not None]
        if shown:
            xs, means, stds = zip(*shown)
            flip_axis.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
    sqrt_d = math.sqrt(config["d"])
    theory_scale = math.sqrt(config["d"] / config["m"])
    flip_axis.axhline(sqrt_d, color="black", linestyle="--", label=f"sqrt(d) = {sqrt_d:.3g} (data norm)")
    flip_axis.axhline(theory_scale, color="grey", linestyle=":", label=f"sqrt(d/m) = {theory_scale:.3g} (theory)")
    flip_axis.set_yscale("log")
    flip_axis.set_ylabel("minimal flipping perturbation (l2)")
    flip_axis.set_title(f"{config['mode']}: d={config['d']}, m={config['m']}, width={config['width']}")
    flip_axis.legend(fontsize=8)

    stats = [mean_std([run["activation_sparsity"] for run in groups[s]]) for s in strengths]
    sparsity_axis.errorbar(positions, [mean for mean, _ in stats], yerr=[std for _, std in stats],
                           marker="o", capsize=3)
    sparsity_axis.set_ylim(0, 1)
    sparsity_axis.set_ylabel("hidden activation sparsity (fraction of zeros)")
    sparsity_axis.set_title("activation sparsity on the training points")

    strength_name = "L1 strength" if config["mode"] == "l1" else "dropout p"
    for axis in (flip_axis, sparsity_axis):
        axis.set_xticks(list(positions), [f"{s:g}" for s in strengths])
        axis.set_xlabel(strength_name)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    for path, image_format in ((png_path, "png"), (pdf_path, "pdf")):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=image_format, dpi=150)
        atomic_write_bytes(path, buffer.getvalue())
    plt.close(figure)


def _cell(value, digits=3):
    return "-" if value is None else f"{value:.{digits}g}"


def summary_table(results):
    """Plain-text table, one row per strength, means over seeds (flip columns: absolute and / sqrt(d))."""
    config = results["config"]
    sqrt_d = math.sqrt(config["d"])
    header = ("strength", "seeds", "train_acc", "loss", "steps", "sparsity", "dead",
              "flip_set", "flip_theory", "flip_attack", "set/sqrt_d", "theory/sqrt_d", "attack/sqrt_d")
    rows = []
    for strength, runs in group_by_strength(results["runs"]).items():
        def mean(key):
            return mean_std([run[key] for run in runs])[0]

        flips = [mean(key) for key, _ in MEASURES]
        rows.append((f"{strength:g}", str(len(runs)), _cell(mean("train_acc")), _cell(mean("final_loss"), 2),
                     _cell(mean("steps"), 4), _cell(mean("activation_sparsity")), _cell(mean("dead_neurons")),
                     *[_cell(flip) for flip in flips],
                     *[_cell(None if flip is None else flip / sqrt_d) for flip in flips]))
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in (header, *rows)]
    lines.append(f"sqrt(d) = {sqrt_d:.4g} (data norm), sqrt(d/m) = {math.sqrt(config['d'] / config['m']):.4g} "
                 "(theory scale); flips are means over seeds of each run's value (per-point ones: the median)")
    return "\n".join(lines)
