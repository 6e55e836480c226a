"""The command line every study file shares; without an action it runs (or resumes) the study, then its tables."""
import argparse
import shutil
import sys
import time
from collections import Counter

from analysis.comparisons import is_null, write_csv
from analysis.inference import detectable_effect
from common import stats
from common.cli import run_main
from common.device import resolve_device
from common.errors import UsageError
from common.machine import kind_of
from planner.plan import make_plan, run_local
from planner.study import ROOT
from vis.study_figure import plot_study_arms
from vis.tables import accuracy_table, study_markdown, verdict_table

STUDY_FIGURE = "fig8_study_arms"


def design_text(study):
    """The design as declared, with the smallest detectable effect on the primary statistic."""
    specs = study.specs()
    lines = [f"design: {study.title}: {len(study.arms)} arms, {len(specs)} models on {study.dataset}, seeds "
             f"{', '.join(map(str, study.seeds))}; protocol {study.protocol}; results in {study.store}"]
    lines += [f"  {arm.label}: {arm.spec(0, study.dataset).name.replace('_seed0', '')}"
              + (f" (seeds {', '.join(map(str, arm.seeds))})" if arm.seeds else "") for arm in study.arms]
    compared_arms = [arm for arm in study.arms if arm.spec(0, study.dataset).reference is not None]
    seeds = min((len(arm.seeds or study.seeds) for arm in compared_arms), default=len(study.seeds))  # the fewest
    reference_seeds = len(study.arms[0].seeds or study.seeds)
    compared = len(compared_arms)
    if min(seeds, reference_seeds) < 2 or not study.evaluate:  # a t-test needs two seeds a side; nothing is compared
        return "\n".join(lines + ["no comparison: training only or one seed an arm (no detectable effect)"])
    effect, holm = (detectable_effect(seeds, n_arms=n, reference_seeds=reference_seeds) for n in (1, compared or 1))
    where = ""
    results = study.results() if (ROOT / study.store).is_dir() else None
    baseline = results and results.arm(study.arms[0].spec(-1, study.dataset))
    values = [v for v in baseline.values[study.statistics[0]] if v is not None] if baseline else []
    if len(values) >= 2:
        sd = stats.sample_std(values)
        where = (f"; in its units: {effect * sd:.4f} and {holm * sd:.4f}, from the seed SD {sd:.4f} of the "
                 f"{len(values)} {study.arms[0].label} seeds measured")
    lines.append(f"smallest detectable effect on {study.statistics[0]} (80% power, 5%, t-test, {seeds} "
                 f"seeds against {reference_seeds}): {effect:.1f} seed SDs for one comparison, {holm:.1f} "
                 f"under Holm over {compared} comparisons{where}")
    return "\n".join(lines)


def time_text(study, workers):
    """The study's time from its records, and the kinds of CPU that evaluated them."""
    records = study.records()
    training = sum(record.checkpoint.metadata.get("train_seconds") or 0 for record in records)
    evaluation = sum(sum(record.timings.values()) for record in records)
    kinds = Counter(kind_of(record.machine) for record in records)
    return (f"study time: {len(records)} of the design's {len(study.specs())} models evaluated; training "
            f"{training / 3600:.1f} h, evaluation {evaluation / 3600:.1f} h summed over the models (the records' timed "
            f"parts; {workers} ran at once, so about {evaluation / workers / 3600:.1f} h of wall time), total about "
            f"{(training + evaluation / workers) / 3600:.1f} h of wall time; evaluated on: "
            + ", ".join(f"{name} {n}" for name, n in sorted(kinds.items())))


def results_or_exit(study):
    results = study.results() if (ROOT / study.store).is_dir() else None
    if results is None:
        raise UsageError(f"no results of {study.title} in {study.store}/{study.dataset}/; run "
                         f"python {sys.argv[0]} first")
    return results


def tables(study, figures_to=None):
    """The study's tables; writes its comparisons.csv and figure beside its records (the figure also to figures_to)."""
    results = results_or_exit(study)
    if not study.compare:
        return "\n".join(accuracy_table(results)) + "\n"
    folder = ROOT / study.store / study.dataset
    path = write_csv(folder, results.rows)
    judged = [row["verdict"] for row in results.rows if row["statistic"] == study.statistics[0] and not is_null(row)]
    counts = ", ".join(f"{judged.count(v)} {v}" for v in dict.fromkeys(sorted(judged)))
    print(f"comparisons: {len(results.rows)} rows in {path.relative_to(ROOT)}; {study.statistics[0]} of "
          f"{len(judged)} arms: {counts}", file=sys.stderr)
    figure = plot_study_arms(results, folder / STUDY_FIGURE)
    if figures_to and figure:
        shutil.copyfile(figure[0], ROOT / figures_to)
    if study.arms is not None:
        print(time_text(study, study.workers or 1), file=sys.stderr)
    return study_markdown(results)


def run(study, data_dir, device, describe_only=False):
    """Train and evaluate the design, seed block by seed block; then the store's summary and the tables."""
    study.check()
    setup = study.setup(data_dir, str(device))
    plan = make_plan(study.specs(), setup, evaluate=study.evaluate, one_kind_per_block=True)
    print(plan.describe() if describe_only else design_text(study), flush=True)
    if describe_only:
        return 0
    started = time.perf_counter()
    failed = run_local(plan, setup, study.workers, ROOT / study.models / "logs")
    if not study.evaluate:
        print(f"study: {study.title} trained in {(time.perf_counter() - started) / 60:.1f} min; checkpoints in "
              f"{study.models}/")
        return 1 if failed else 0
    setup.store.write_summary(study.dataset)
    if failed:
        return 1
    print(tables(study))
    print(f"study: done in {(time.perf_counter() - started) / 60:.1f} min; records in {study.store}/{study.dataset}/, "
          f"checkpoints in {study.models}/")
    return 0


def main(study, parts=None, extra_tables=None, figures_to=None, argv=None):
    """The study file's command line; ``parts``: ``{flag: Study}`` run instead of ``study``."""
    parts, extra_tables = parts or {}, extra_tables or {}
    parser = argparse.ArgumentParser(description=study.title)
    which = parser.add_mutually_exclusive_group()
    for flag, part in parts.items():
        which.add_argument(f"--{flag}", action="store_true", help=f"{part.title} instead")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--design", action="store_true", help="print the design and its detectable effect; run nothing")
    action.add_argument("--print", action="store_true", help="print the plan (tasks, what each waits for, seed "
                                                             "blocks); run nothing")
    action.add_argument("--tables", action="store_true", help="print the tables; write comparisons.csv and the figure")
    action.add_argument("--verdict-table", action="store_true", help="print the verdict table the README leads with")
    for flag in extra_tables:
        action.add_argument(f"--{flag}", action="store_true", help=extra_tables[flag].__doc__.split("\n")[0])
    parser.add_argument("--dataset", help="another data set the design may run on")
    parser.add_argument("--data-dir", default=str(ROOT / "datasets"), help="the data sets' files (main.py's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    args = parser.parse_args(argv)
    chosen = next((part for flag, part in parts.items() if getattr(args, flag.replace("-", "_"))), study)
    if args.dataset:
        if args.dataset not in chosen.also_on:
            raise UsageError(f"--dataset {args.dataset}: {chosen.title} runs on {chosen.dataset}"
                             + (f" or {', '.join(chosen.also_on)}" if chosen.also_on else " only"))
        chosen = chosen.with_(dataset=args.dataset, store=f"{chosen.store}")
    for flag, table in extra_tables.items():
        if getattr(args, flag.replace("-", "_")):
            print(table(), end="")
            return 0
    if args.design:
        print(design_text(chosen))
    elif args.verdict_table:
        print("\n".join(verdict_table(results_or_exit(chosen))))
    elif args.tables:
        print(tables(chosen, figures_to if chosen is study else None), end="")
    else:
        return run(chosen, args.data_dir, resolve_device(args.device), describe_only=args.print)
    return 0


def run_study(study, **kwargs):
    run_main(lambda argv: main(study, argv=argv, **kwargs))
