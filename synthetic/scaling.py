"""The theory against the data: how the unregularised network's per-point flip scales with d and m.

From results files at several (d, m): the flip, its ratio to sqrt(d/m) and power-law exponents in d and in m."""
import json
import math
import statistics
from pathlib import Path

from common.cli import ArgumentParser, run_main
from common.errors import FileProblem
from synthetic.records import BASELINE_MEASURES


def scaling_rows(documents):
    """Per (d, m), in increasing order: the mean over seeds of the unregularised median-point flips."""
    rows = {}
    for document in documents:
        config, baseline = document["config"], document["baseline"]
        row = {"d": config["d"], "m": config["m"], "theory_scale": baseline["theory_scale"]}
        for key, _ in BASELINE_MEASURES:
            ratio = baseline[f"{key}_over_theory_scale"]
            if ratio["mean"] is None:
                continue
            row[key] = ratio["mean"] * baseline["theory_scale"]
            row[f"{key}_over_theory_scale"] = (ratio["mean"], ratio["std"])
        rows[(row["d"], row["m"])] = row
    return [rows[key] for key in sorted(rows)]


def exponent(xs, ys):
    """Least-squares slope of log y against log x; None for fewer than two distinct x."""
    if len(set(xs)) < 2:
        return None
    return statistics.linear_regression([math.log(x) for x in xs], [math.log(y) for y in ys]).slope


def sweep_exponents(rows, key):
    """{"d": {m: slope in d at that m}, "m": {d: slope in m at that d}}, for sweeps of two or more points."""
    found = {"d": {}, "m": {}}
    for varied, fixed in (("d", "m"), ("m", "d")):
        for value in sorted({row[fixed] for row in rows}):
            sweep = [row for row in rows if row[fixed] == value and key in row]
            slope = exponent([row[varied] for row in sweep], [row[key] for row in sweep])
            if slope is not None:
                found[varied][value] = slope
    return found


def scaling_report(documents):
    rows = scaling_rows(documents)
    header = "  ".join(f"{label:>16}  {'/ sqrt(d/m)':>16}" for _, label in BASELINE_MEASURES)
    lines = ["     d      m  sqrt(d/m)  " + header]
    for row in rows:
        cells = []
        for key, _ in BASELINE_MEASURES:
            if key in row:
                mean, std = row[f"{key}_over_theory_scale"]
                cells.append(f"{row[key]:16.3f}  {f'{mean:.3f} ± {std:.2g}' if std is not None else f'{mean:.3f}':>16}")
            else:
                cells.append(f"{'-':>16}  {'-':>16}")
        lines.append(f"{row['d']:6d} {row['m']:6d}  {row['theory_scale']:9.3f}  " + "  ".join(cells))
    for key, label in BASELINE_MEASURES:
        found = sweep_exponents(rows, key)
        parts = [f"in d at m={m}: {slope:+.2f}" for m, slope in found["d"].items()]
        parts += [f"in m at d={d}: {slope:+.2f}" for d, slope in found["m"].items()]
        lines.append(f"{label}: fitted exponent {'; '.join(parts) or '(needs two sizes)'} "
                     "(sqrt(d/m): +0.5 in d, -0.5 in m; sqrt(d): +0.5 in d, 0 in m)")
    lines.append("flips: mean over the converged seeds of each unregularised run's median-point flip; ± sample std")
    return "\n".join(lines)


def read_results(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise FileProblem(f"cannot read results file {path}: {err}; run synthetic_run.py to write it") from None


def main(argv=None):
    parser = ArgumentParser(prog="python -m synthetic.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="results files of synthetic_run.py (strength 0 among the runs)")
    args = parser.parse_args(argv)
    print(scaling_report([read_results(path) for path in args.files]))
    return 0


if __name__ == "__main__":
    run_main(main)
