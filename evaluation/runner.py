"""Evaluating models: one model over the configured attacks (``evaluate_model``), and every selected
variant that has a finished checkpoint, with one result file each (``evaluate_variants``).

Each variant's record is written as soon as it is done and summary.csv is
rebuilt after every variant (from the records in memory, reading only files
other processes added), so variants evaluated by separate processes (a job
array) merge, and an interrupted run keeps what it finished. A variant
whose record already matches its checkpoint and the evaluation settings is
skipped unless ``force``.
"""
import hashlib
import math
import sys
import time
from dataclasses import dataclass, replace

import torch

from attacks import ATTACKS
from attacks.base import ALL_IMAGES, QUERY_SUBSET, WHITE_BOX
from common.errors import FileProblem
from evaluation.checks import CompletedRun, run_checks
from evaluation.metrics import attack_metrics, make_targets, run_attack
from evaluation.minimal import BISECTION_ROUNDS, TOLERANCE, minimal_entry, minimal_perturbations
from evaluation.records import RecordFolder, format_summary_table, read_record
from sparsity.measure import evaluate_clean, learned
from sparsity.methods import METHODS
from data.registry import DEFAULT_DATASET
from training.checkpoint import (checkpoint_test_set, checkpoint_variant, load_checkpoint, model_from_checkpoint,
                                 require_dataset)


def query_subset(n_eval, size, seed):
    """The seeded, sorted subset of evaluated images that query-based attacks get."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n_eval, generator=generator)[:size].sort().values


def evaluate_model(model, x, y, num_classes, device, config):
    """Clean accuracy and activation sparsity on all of x, then every configured attack run, then the checks.

    Returns the model-dependent part of a result record: ``clean_acc``, ``learned``, ``n_test``,
    ``activation_sparsity``, ``attacks`` (run key -> entry), ``checks``, ``timings``, ``query_indices``
    (which evaluated images the query-based attacks got) and ``eval_config`` (the settings as run).
    Nothing is computed twice: the images move to the device once, the clean pass's predictions serve every
    attack, a run that continues another (``AttackRun.after``) starts from its result, the robustness curves
    reuse the protocol's runs at its eps, and the eps-monotonicity check reuses the curve at 2·eps.
    """
    config = config.resolved(device, len(x))
    x = x.to(device)
    timings = {}
    started = time.perf_counter()
    clean = evaluate_clean(model, x, y, config.batch_size, device)
    timings["clean_s"] = time.perf_counter() - started
    x_eval, y_eval = x[:config.n_eval], y[:config.n_eval].cpu()
    clean_pred = clean["predictions"][:config.n_eval].cpu()
    images = {ALL_IMAGES: torch.arange(config.n_eval),
              QUERY_SUBSET: query_subset(config.n_eval, config.query_n, config.seed)}
    targets = make_targets(y_eval, num_classes, config.seed)
    runs = [run for name in config.attacks for run in ATTACKS[name].evaluation_runs(model, config)]
    outcomes = run_attacks(model, runs, config, x_eval, y_eval, clean_pred, images, targets, device, timings)
    attacks, completed = {}, []
    for run in runs:
        indices, outcome = images[run.images], outcomes[run.key]
        attacks[run.key] = {"attack": run.attack.name, "title": run.title, "threat_model": run.attack.threat_model,
                            "reference": run.attack.reference, "settings": run.attack.settings(),
                            **attack_metrics(outcome, y_eval[indices], run.targeted)}
        completed.append(CompletedRun(run.key, run.attack.threat_model, run.targeted, indices,
                                      outcome["adv_pred"] == y_eval[indices]))
    minimal = {}
    for norm in config.minimal_norms:
        started = time.perf_counter()
        minimal[norm] = minimal_entry(
            minimal_perturbations(model, x_eval, y_eval, device, norm, config.minimal_limit, config.steps,
                                  config.fab_steps, config.batch_size, config.seed),
            config.seed, {"fab_steps": config.fab_steps, "pgd_steps": config.steps, "pgd_step": "2.5 eps / steps",
                          "pgd_random_start": False, "bisection_rounds": BISECTION_ROUNDS, "tolerance": TOLERANCE})
        timings[f"minimal_{norm}_s"] = time.perf_counter() - started
    started = time.perf_counter()
    curves, swept = robustness_curves(model, config, x_eval, y_eval, clean_pred, device, completed)
    timings["eps_sweep_s"] = time.perf_counter() - started
    started = time.perf_counter()
    checks = run_checks(model, config, x_eval, y_eval, device, completed, clean_pred, swept, minimal)
    timings["checks_s"] = time.perf_counter() - started
    used = {run.images for run in runs}
    return {"clean_acc": clean["accuracy"], "learned": learned(clean["accuracy"], num_classes), "n_test": len(x),
            "activation_sparsity": clean["activation_sparsity"],
            "worst_case": worst_case(completed, config.n_eval, minimal.get("linf"), config.eps),
            "attacks": attacks, "robustness_curves": curves, "minimal_perturbation": minimal,
            "eval_images_sha256": images_sha256(x_eval, y_eval), "checks": checks, "timings": timings,
            "query_indices": images[QUERY_SUBSET].tolist() if QUERY_SUBSET in used else [],
            "eval_config": config.to_dict()}


def run_attacks(model, runs, config, x, y, clean_pred, images, targets, device, timings=None, desc=""):
    """``{run key: run_attack outcome}`` for every AttackRun of ``runs`` over ``x`` (the evaluated images, on the
    device), each on its images; a run that continues another runs after it, from its result. ``timings`` (a
    dict) gets ``{key}_s`` per run, in the order of ``runs``."""
    continued = {run.after for run in runs if run.after is not None}
    order = [run for run in runs if run.after is None] + [run for run in runs if run.after is not None]
    outcomes, seconds = {}, {}
    for run in order:
        indices = images[run.images]
        batch_size = config.black_box_batch_size if run.attack.counts_queries else config.batch_size
        started = time.perf_counter()
        outcomes[run.key] = run_attack(model, run.attack, x[indices], y[indices], device, batch_size,
                                       targets[indices] if run.targeted else None, desc=run.key + desc,
                                       clean_pred=clean_pred[indices], prior=outcomes.get(run.after),
                                       keep_adversarial=run.key in continued)
        seconds[run.key] = time.perf_counter() - started
    if timings is not None:
        timings.update({f"{run.key}_s": seconds[run.key] for run in runs})
    for outcome in outcomes.values():
        outcome.pop("adversarial", None)  # kept only for the run that continued it
    return outcomes


def worst_case(completed, n, minimal_linf, eps):
    """The number to lead with, per image over everything that attacked it (as RobustBench reports): an image
    counts as robust only if every attack run on it failed and, where eps* was measured in L-inf, eps* > eps.
    ``robust_acc`` is over all ``n`` evaluated images (query-based attacks ran on their subset only);
    ``all_attacks_*`` over the images every attack ran on. None without any attack or eps*."""
    if not completed and minimal_linf is None:
        return None
    robust = torch.ones(n, dtype=torch.bool)
    everyone = torch.ones(n, dtype=torch.bool)
    for run in completed:
        robust[run.indices] &= run.still_correct.cpu()
        attacked = torch.zeros(n, dtype=torch.bool)
        attacked[run.indices] = True
        everyone &= attacked
    sources = [run.key for run in completed]
    if minimal_linf is not None:
        eps_star = torch.tensor([math.inf if v is None else v for v in minimal_linf["eps_star"]], dtype=torch.float64)
        robust &= eps_star > eps
        sources.append("eps_star_linf")
    return {"n": n, "n_robust": int(robust.sum()), "robust_acc": robust.float().mean().item(), "attacks": sources,
            "all_attacks_n": int(everyone.sum()),
            "all_attacks_robust_acc": robust[everyone].float().mean().item() if everyone.any() else None}


def robustness_curves(model, config, x, y, clean_pred, device, completed):
    """``({run key: [{eps, n, robust_acc}, ...]}, {(run key, eps): still_correct})`` for every untargeted
    white-box run on all evaluated images, at each eps of ``config.eps_sweep`` (the protocol's eps reuses its
    runs); the second part holds each image's outcome, for the checks."""
    done = {run.key: run.still_correct for run in completed}
    everything = {ALL_IMAGES: torch.arange(len(y))}
    curves, swept = {}, {}
    for eps in sorted(config.eps_sweep):
        at_eps = replace(config, eps=eps)
        runs = [run for name in config.attacks for run in ATTACKS[name].evaluation_runs(model, at_eps)
                if run.attack.threat_model == WHITE_BOX and not run.targeted and run.images == ALL_IMAGES]
        if eps == config.eps and all(run.key in done for run in runs):
            still_correct = {run.key: done[run.key] for run in runs}
        else:
            outcomes = run_attacks(model, runs, config, x, y, clean_pred, everything, None, device,
                                   desc=f" eps={eps:.4g}")
            still_correct = {key: outcome["adv_pred"] == y for key, outcome in outcomes.items()}
        for run in runs:
            swept[run.key, eps] = still_correct[run.key]
            curves.setdefault(run.key, []).append(
                {"eps": eps, "n": len(y), "robust_acc": still_correct[run.key].float().mean().item()})
    return curves, swept


def images_sha256(x, y):
    """Identity of the evaluated images and labels: per-image results of two records pair up only when it matches."""
    digest = hashlib.sha256()
    digest.update(x.detach().cpu().contiguous().numpy().tobytes())
    digest.update(y.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Job:
    """A variant ready for evaluation: its checkpoint (read once, memory-mapped: the weights come from the file
    when its turn comes, so a long list of variants does not hold every checkpoint in memory), path and hash."""

    variant: object
    checkpoint_path: object
    checkpoint: dict
    sha256: str

    @property
    def metadata(self):
        return self.checkpoint["metadata"]


def find_checkpoints(variants, models_dir, train_hint, dataset=DEFAULT_DATASET):
    """``(ready, warnings)``: the variants with a finished checkpoint of exactly that identity, and why the
    others are left out. Every checkpoint is read here, before any attack runs, so a corrupt file or one that
    holds another variant or another data set's model stops the run before hours of work."""
    ready, warnings = [], []
    for variant in variants:
        path = variant.checkpoint_path(models_dir)
        if not path.exists():
            warnings.append(f"no checkpoint for {variant.name} in {models_dir}; create it with: {train_hint(variant)}")
            continue
        checkpoint = load_checkpoint(path, mmap=True)
        require_dataset(path, checkpoint["metadata"], dataset)
        stored = checkpoint_variant(checkpoint)
        if stored != variant:
            raise FileProblem(f"{path} holds {stored.method} variant {stored.name} (strength {stored.strength!r}), "
                              f"not the requested {variant.method} variant {variant.name} (strength "
                              f"{variant.strength!r}); move it to its own name or retrain it", "models_dir")
        status = checkpoint["metadata"]["status"]
        if status != "complete":
            warnings.append(f"skipping {variant.name}: its checkpoint {path} is {status.replace('_', ' ')}; "
                            f"{'retrain it with' if status == 'diverged' else 'finish its training with'}: "
                            f"{train_hint(variant, force=status == 'diverged', recipe=checkpoint['metadata']['recipe'])}")
            continue
        ready.append(Job(variant, path, checkpoint, file_sha256(path)))
    return ready, warnings


def no_checkpoint_error(variants, warnings, models_dir):
    return FileProblem(f"no finished checkpoint for any of the {len(variants)} selected variants in {models_dir}"
                       f" (the first: {warnings[0]})", "models_dir")


def variant_config(config, variant):
    """A variant's attacks, targets and query subset follow its own seed, however the command split the work."""
    return replace(config, seed=variant.seed)


def needs_evaluation(job, method, results_dir, config, device, force=False, folder=None):
    """Whether ``job`` (a Job) has no up-to-date result in ``results_dir`` (or ``force`` redoes it). ``folder``:
    the method's RecordFolder where the caller holds one, else the result file is read."""
    if force:
        return True
    path = job.variant.results_path(results_dir, method)
    record = folder.get(path) if folder is not None else (read_record(path, method) if path.exists() else None)
    return not is_up_to_date(record, job, variant_config(config, job.variant), device)


def is_up_to_date(record, job, config, device):
    """Whether ``record`` (None: no result yet) is this variant's for this very checkpoint file and these
    settings."""
    if record is None:
        return False
    return (record.checkpoint.get("sha256") == job.sha256
            and record.eval_config == {**config.resolved(device, record.n_test).to_dict(), "device": str(device)})


def baseline_elsewhere(job, method, results_dir, config, device):
    """The baseline's up-to-date record in another method's folder (every method's folder holds a copy of the
    baseline, evaluated identically), or None: a study of several methods evaluates each baseline seed once."""
    for other in METHODS:
        path = job.variant.results_path(results_dir, other)
        if other == method or not path.is_file():
            continue
        try:
            record = read_record(path, other)
        except FileProblem:
            continue  # that folder's own evaluation reports it
        if is_up_to_date(record, job, variant_config(config, job.variant), device):
            return record
    return None


def print_warning(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)


def evaluate_variants(variants, method, models_dir, results_dir, data_dir, device, config, train_hint, force=False,
                      log=print, warn=print_warning, dataset=DEFAULT_DATASET):
    """Evaluate the variants of ``method`` (and the baseline) that have finished ``dataset`` checkpoints in
    ``models_dir``, writing to ``results_dir/method`` (both folders of that data set: ``data.registry``).

    ``train_hint(variant, force=False, recipe=None)`` returns the command that (re)trains a variant (with a
    checkpoint's recipe where one exists), for messages.
    Returns the records of the evaluated variants, in table order.
    """
    method_dir = results_dir / method
    folder = RecordFolder(method_dir, method, warn, dataset)
    folder.records()  # a malformed or foreign result file stops the run before any attack
    ready, warnings = find_checkpoints(variants, models_dir, train_hint, dataset)
    if not ready:
        raise no_checkpoint_error(variants, warnings, models_dir)
    for warning in warnings:
        warn(warning)
    test_sets = {}  # classes -> (x on the device, y): variants of one run share their test set
    started = time.perf_counter()
    done, skipped = [], []
    for index, job in enumerate(ready, start=1):
        path = job.variant.results_path(results_dir, method)
        metadata = job.metadata
        if not needs_evaluation(job, method, results_dir, config, device, force, folder):
            skipped.append(job.variant.name)
            log(f"[{index}/{len(ready)}] {job.variant.name}: result is up to date, skipped (--force redoes it)")
            continue
        copy = (baseline_elsewhere(job, method, results_dir, config, device)
                if job.variant.is_baseline and not force else None)
        if copy is not None:
            folder.write(path, {**copy.raw, "method": method})
            folder.write_summary()
            done.append(job.variant.name)
            log(f"[{index}/{len(ready)}] {job.variant.name}: the same evaluation of the same checkpoint is in "
                f"{copy.path}, copied")
            continue
        log(f"[{index}/{len(ready)}] {job.variant.name}")
        classes = tuple(metadata["recipe"]["classes"])
        if classes not in test_sets:
            x, y = checkpoint_test_set(metadata, data_dir)
            test_sets[classes] = x.to(device), y
        x, y = test_sets[classes]
        model = model_from_checkpoint(job.checkpoint, device)
        evaluation = evaluate_model(model, x, y, metadata["num_classes"], device, variant_config(config, job.variant))
        eval_config = evaluation.pop("eval_config")
        folder.write(path, {
            "dataset": dataset,
            "method": method,
            "variant": job.variant.to_record(),
            "checkpoint": {"path": str(job.checkpoint_path), "sha256": job.sha256, "metadata": metadata},
            **evaluation,
            "eval_config": {**eval_config, "device": str(device)},
        })
        folder.write_summary()
        done.append(job.variant.name)
        log(variant_line(job.variant, evaluation))
    _, records = folder.write_summary()
    names = {job.variant.name for job in ready}
    shown = [record for record in records if record.variant.name in names]
    log(format_summary_table(shown))
    not_learned = [r.variant.name for r in shown if r.learned is False]
    log(f"evaluation: {len(done)} evaluated, {len(skipped)} up to date"
        + (f", {len(not_learned)} did not learn ({' '.join(not_learned)})" if not_learned else "")
        + f" in {time.perf_counter() - started:.0f} s; results in {method_dir} (summary.csv lists every variant there)")
    return shown


def variant_line(variant, evaluation):
    """One line per evaluated variant: clean accuracy, robust accuracy per attack, failed checks."""
    failed = [check["name"] for check in evaluation["checks"] if check["status"] == "failed"]
    return (f"{variant.name}: clean acc {evaluation['clean_acc']:.1%}"
            + ("" if evaluation["learned"] else " (DID NOT LEARN: near chance)")
            + (f", worst case over every attack {evaluation['worst_case']['robust_acc']:.1%}"
               if evaluation["worst_case"] else "")
            + "".join(f", {key} robust acc {entry['robust_acc']:.1%}" for key, entry in evaluation["attacks"].items())
            + "".join(f", median eps* {norm} " + (f"{entry['median']:.4g}" if entry["median"] is not None
                                                   else f">= {entry['limit']:.4g} (censored)")
                      for norm, entry in evaluation["minimal_perturbation"].items())
            + (f"; FAILED checks: {' '.join(failed)}" if failed else ""))
