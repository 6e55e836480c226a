"""Evaluate every selected variant that has a checkpoint; one result JSON each, then summary.csv.

Each variant's result is written as soon as it is done, and summary.csv is
rebuilt from all result files of the method's folder, so variants evaluated by
separate processes (a job array) merge, and an interrupted run keeps what it
finished.
"""
import sys
import time

from attacks.evaluate import evaluate_model
from attacks.results import format_summary_table, load_method_results, rebuild_summary_csv, write_variant_result
from common.errors import UsageError
from data.cifar import load_cifar10, select_classes
from sparsity.checkpoint import load_checkpoint, model_from_checkpoint, variant_record


def train_command(variant, quick):
    """The command that trains ``variant``'s checkpoint (named in warnings and errors)."""
    flags = ["--quick"] if quick else []
    if variant.is_baseline:
        flags += ["--baseline-only"]
    else:
        flags += (["--dropout"] if variant.method == "dropout" else []) + [
            "--layers", variant.layer, "--strength", f"{variant.strength:g}", "--no-baseline"]
    return " ".join(["python main.py --mode train", *flags, "--seed", str(variant.seed)])


def find_checkpoints(variants, models_dir, quick):
    """``[(variant, checkpoint)]`` for the variants ready to evaluate; warns about the others.

    Every checkpoint is read here, before any attack runs, so a corrupt file
    stops the run (UsageError naming it) before hours of work.
    """
    ready, warnings = [], []
    for variant in variants:
        path = variant.checkpoint_path(models_dir)
        if not path.exists():
            warnings.append(f"no checkpoint for {variant.name} in {models_dir}; create it with: "
                            f"{train_command(variant, quick)}")
            continue
        checkpoint = load_checkpoint(path)
        status = checkpoint["metadata"]["status"]
        if status != "complete":
            warnings.append(f"skipping {variant.name}: its checkpoint {path} is {status.replace('_', ' ')}; "
                            f"rerun its training with: {train_command(variant, quick)}")
            continue
        ready.append((variant, checkpoint))
    if not ready:
        raise UsageError(f"no finished checkpoint for any selected variant in {models_dir}; "
                         f"train first, e.g. {train_command(variants[0], quick)}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return ready


class TestSets:
    """Test images of a checkpoint's classes as floats in [0, 1], read once per class list."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self._cifar = None
        self._by_classes = {}

    def get(self, classes):
        key = tuple(classes)
        if key not in self._by_classes:
            self._cifar = self._cifar or load_cifar10(self.data_dir)
            x, y = select_classes(self._cifar.test_x, self._cifar.test_y, list(key))
            self._by_classes[key] = (x.float().div_(255), y)
        return self._by_classes[key]


def evaluate_variants(variants, method, models_dir, results_dir, data_dir, device, config, attacks, quick=False):
    """Evaluate the variants of ``method`` (and the baseline) that have finished checkpoints.

    Returns the records written, in table order; prints the summary table.
    """
    ready = find_checkpoints(variants, models_dir, quick)
    test_sets = TestSets(data_dir)
    method_dir = results_dir / method
    started = time.perf_counter()
    for index, (variant, checkpoint) in enumerate(ready, start=1):
        metadata = checkpoint["metadata"]
        print(f"[{index}/{len(ready)}] {variant.name}", flush=True)
        x, y = test_sets.get(metadata["recipe"]["classes"])
        model = model_from_checkpoint(checkpoint, device)
        evaluation = evaluate_model(model, x, y, metadata["num_classes"], device, config, attacks)
        record = {
            "method": method,
            "variant": variant_record(variant),
            "checkpoint": {"path": str(variant.checkpoint_path(models_dir)), "metadata": metadata},
            "clean_acc": evaluation["clean_acc"],
            "n_test": evaluation["n_test"],
            "activation_sparsity": metadata["activation_sparsity"],
            "eval_config": {**config.to_dict(), "attacks": list(attacks), "device": str(device)},
            "attacks": evaluation["attacks"],
            "checks": evaluation["checks"],
            "timings": evaluation["timings"],
            "nes_indices": evaluation["nes_indices"],
        }
        write_variant_result(variant.results_path(results_dir, method), record)
        failed = [check["name"] for check in evaluation["checks"] if not check["passed"]]
        print(f"{variant.name}: clean acc {evaluation['clean_acc']:.1%}"
              + "".join(f", {key} success {value['success_rate_all']:.1%}"
                        for key, value in evaluation["attacks"].items())
              + (f"; FAILED checks: {' '.join(failed)}" if failed else ""), flush=True)
    rebuild_summary_csv(method_dir)
    records = load_method_results(method_dir)
    names = {variant.name for variant, _ in ready}
    print(format_summary_table([record for record in records if record["variant"]["name"] in names]))
    print(f"evaluation: {len(ready)} variant(s) in {time.perf_counter() - started:.0f} s; "
          f"results in {method_dir} (summary.csv lists every variant there)")
    return records
