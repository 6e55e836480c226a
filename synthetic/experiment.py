"""One synthetic experiment end to end: every (strength, seed) run of a config trained as one batch, measured,
written."""
import math
import time
from pathlib import Path

from tqdm import tqdm

from common import validation
from common.device import DEFAULT_THREADS, cpu_threads
from common.io import atomic_write_json, ensure_writable_dir
from synthetic.figure import plot_results
from synthetic.measures import flip_measures
from synthetic.records import results_document, run_record
from synthetic.trainer import RunSpec, final_statistics, prepare_runs, train_stacked


def run_specs(config):
    """(strength, seed) and the trainer's RunSpec of every run, strengths outermost."""
    runs = []
    for strength in config.strengths:
        for seed in config.seeds:
            if config.mode == "l1":
                spec = RunSpec(seed, l1=strength * config.l1_scale)
            else:
                spec = RunSpec(seed, dropout=strength)
            runs.append((strength, seed, spec))
    return runs


def run_and_write(config, results_dir, device="cpu", progress=True, threads=DEFAULT_THREADS):
    """``run_experiment``, then ``write_results`` into ``results_dir/synthetic`` (checked first): results, paths."""
    config.validate()
    validation.integer(threads, "threads", minimum=1)
    folder = ensure_writable_dir(Path(results_dir) / "synthetic", location="results_dir")
    results = run_experiment(config, device, progress, threads)
    return results, write_results(results, config, folder)


def run_experiment(config, device="cpu", progress=True, threads=DEFAULT_THREADS):
    """The results document of ``config``; 1 thread by default, as on a small shared CPU a second one mostly waits
    for a busy core (3x slower measured on a loaded 2-core machine)."""
    config.validate()
    runs = run_specs(config)
    with cpu_threads(threads):
        batch = prepare_runs([spec for _, _, spec in runs], config.d, config.m, config.width, device)
        started = time.perf_counter()
        outcome = train_stacked(batch, config.train_settings(), progress)
        train_seconds = time.perf_counter() - started
        statistics = final_statistics(outcome.net, batch.x, batch.y, batch.l1)

        started = time.perf_counter()
        limit = config.search_limit * math.sqrt(config.d)
        measures = flip_measures(outcome.net, batch.x, batch.y, limit, progress=_radius_bar if progress else None)
        measure_seconds = time.perf_counter() - started

        records = [run_record(strength, seed, outcome, statistics, measures, r)
                   for r, (strength, seed, _) in enumerate(runs)]
    return results_document(config, records, {"train_s": train_seconds, "measures_s": measure_seconds})


def _radius_bar(rounds):
    return tqdm(rounds, desc="l2 PGD radius search", unit="round", leave=False)


def write_results(results, config, folder):
    """``{name}.json``, ``{name}.png`` and ``{name}.pdf`` in ``folder``, name from ``config.results_name()``."""
    stem = Path(folder) / config.results_name()
    json_path = stem.with_name(f"{stem.name}.json")
    atomic_write_json(json_path, results, location="results_dir")
    return [json_path, *plot_results(results, stem)]


def summary_line(results, paths):
    config = results["config"]
    runs = results["runs"]
    converged = sum(run["converged"] for run in runs)
    seconds = sum(results["timings"].values())
    extensions = ",".join(path.suffix.lstrip(".") for path in paths)
    return (f"{config['mode']}: {len(runs)} runs, {converged} converged (data loss < {config['loss_target']:g}), "
            f"{seconds:.0f} s; wrote {paths[0].with_suffix('')}.{{{extensions}}}")
