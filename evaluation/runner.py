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

from attacks import ATTACKS, AutoAttack
from attacks.adaptive import ADAPTIVE
from attacks.base import ALL_IMAGES, QUERY_SUBSET, WHITE_BOX
from common import stats
from common.errors import FileProblem
from common.machine import machine
from evaluation.checks import CompletedRun, run_checks
from evaluation.metrics import attack_metrics, make_targets, run_attack
from evaluation.config import audit_radius
from evaluation.minimal import Search, median_correct, minimal_perturbations
from evaluation.record_parts import (AdaptiveRun, AttackResult, Audit, AuditRadius, AuditReference, CheckpointInfo,
                                     CurvePoint, EpsStarEntry, WorstCase)
from evaluation.records import Evaluation, RecordFolder, ResultRecord, read_record
from evaluation.summary import format_summary_table
from sparsity.kwta import has_kwta
from sparsity.measure import evaluate_clean, learned
from sparsity.methods import METHODS
from sparsity.variants import Variant
from training.checkpoint import (checkpoint_test_set, checkpoint_variant, load_checkpoint, model_from_checkpoint,
                                 require_dataset)
from training.recipe import Recipe


def query_subset(n_eval, size, seed):
    """The seeded, sorted subset of evaluated images that query-based attacks get."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n_eval, generator=generator)[:size].sort().values


def evaluate_model(model, x, y, num_classes, device, config, audit_reference=None, transfer_source=None):
    """Clean accuracy and activation sparsity on all of x, then every configured attack run, the robustness curves,
    eps* (the minimum over FAB, the APGD bisection and every fixed-eps run), the adaptive attacks on a k-WTA model and
    the audit at eps* scale, then the checks.

    ``audit_reference``: ``(source, median eps*)`` the audit's multiples scale (the same-seed baseline's, where the
    caller has it), else this model's own median eps* (correct images). ``transfer_source``: the model the
    ``transfer`` adaptive attack attacks (the same-seed baseline), or None.

    Returns the model-dependent part of a result record, an ``evaluation.records.Evaluation`` (its
    ``eval_config``: the settings as run, without the device).
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
    outcomes = run_attacks(model, runs, config, x_eval, y_eval, clean_pred, images, targets, device, timings,
                           keep_all=True)
    attacks, completed, evidence = {}, [], []
    for run in runs:
        indices, outcome = images[run.images], outcomes[run.key]
        metrics = attack_metrics(outcome, y_eval[indices], run.targeted)
        attacks[run.key] = AttackResult.of(run.attack, run.title, metrics)
        completed.append(CompletedRun(run.key, run.attack.threat_model, run.targeted, indices,
                                      outcome["adv_pred"] == y_eval[indices]))
        evidence.append((run.key, config.eps, indices, outcome.pop("adversarial")))
    started = time.perf_counter()
    curves, swept = robustness_curves(model, config, x_eval, y_eval, clean_pred, device, completed, evidence)
    timings["eps_sweep_s"] = time.perf_counter() - started
    search = Search.of(config, straight_through=("identity",) if has_kwta(model) else ())
    results = {}
    for norm in config.minimal_norms:
        started = time.perf_counter()
        results[norm] = minimal_perturbations(model, x_eval, y_eval, device, norm, config.minimal_limit, search,
                                              config.batch_size)
        for key, eps, indices, x_adv in evidence:
            results[norm].fold(model, x_eval, y_eval, key, eps, indices, x_adv, config.batch_size)
        timings[f"minimal_{norm}_s"] = time.perf_counter() - started
    evidence.clear()  # the examples are folded into eps*; the memory goes back
    audit, before_audit = None, None
    if "linf" in results:
        audit, before_audit = run_audit(model, config, x_eval, y_eval, clean_pred, images, device, results,
                                        audit_reference, transfer_source, timings)
    minimal = {norm: EpsStarEntry.measured(result, config.seed, search.settings(),
                                           before_audit if norm == "linf" else None)
               for norm, result in results.items()}
    started = time.perf_counter()
    checks = run_checks(model, config, x_eval, y_eval, device, completed, clean_pred, swept, minimal, audit)
    timings["checks_s"] = time.perf_counter() - started
    used = {run.images for run in runs}
    return Evaluation(clean_acc=clean["accuracy"], learned=learned(clean["accuracy"], num_classes), n_test=len(x),
                      sparsity=dict(clean["activation_sparsity"]),
                      worst_case=worst_case(completed, config.n_eval, minimal.get("linf"), config.eps),
                      attacks=attacks, curves=curves, minimal=minimal, audit=audit,
                      images_sha256=images_sha256(x_eval, y_eval), checks=tuple(checks), timings=timings,
                      query_indices=tuple(images[QUERY_SUBSET].tolist()) if QUERY_SUBSET in used else (),
                      eval_config=config.to_dict())


def audit_scales_with_baseline(config):
    """Whether some audit radius is a multiple of the same-seed baseline's median eps* (read from its record)."""
    return "linf" in (config.minimal_norms or ()) and any(audit_radius(given)[1] for given in config.audit_radii or ())


def audit_radii(config, reference):
    """``[(eps, as given)]``: the audit radii, multiples resolved against the reference median eps*
    (``(source, value)``), capped at 1; multiples are left out where the reference is censored or missing."""
    radii = []
    for given in config.audit_radii:
        number, multiple = audit_radius(given)
        if not multiple:
            radii.append((number, str(given)))
        elif reference[1] is not None and math.isfinite(reference[1]):
            radii.append((min(1.0, number * reference[1]), str(given)))
    return sorted(dict(radii).items()) if radii else []


def run_audit(model, config, x, y, clean_pred, images, device, results, reference, source, timings):
    """``(Audit, eps* before the audit)``: on a k-WTA model the adaptive attacks at each audit radius (the
    protocol's eps without an audit), folded into every norm's eps*; then AutoAttack (standard) at each radius on
    every evaluated image, folded in too. The check compares AutoAttack with eps* as it stood before AutoAttack's
    runs joined it (the adaptive attacks' included)."""
    linf = results["linf"]
    if not any(audit_radius(given)[1] for given in config.audit_radii or ()):
        # no multiple to scale: no reference, so the record does not depend on which records existed when it ran
        reference = (None, None)
    elif reference is None:
        reference = ("own", median_correct(linf.eps_star))
    radii = audit_radii(config, reference)
    adaptive, skipped, audited_radii = [], [], []
    started = time.perf_counter()
    if has_kwta(model):
        for eps in [r for r, _ in radii] or [config.eps]:
            for name in config.adaptive_attacks:
                built = ADAPTIVE[name](model, eps, config, source)
                if built is None:
                    skipped.append(f"{name}: no same-seed baseline checkpoint to transfer from")
                    continue
                attack, threat_model, which = built
                indices = images[which]
                batch_size = config.black_box_batch_size if attack.counts_queries else config.batch_size
                outcome = run_attack(model, attack, x[indices], y[indices], device, batch_size,
                                     desc=f"{name} eps={eps:.4g}", clean_pred=clean_pred[indices],
                                     keep_adversarial=True)
                key = f"{name}@{eps:.4g}"
                for result in results.values():
                    result.fold(model, x, y, key, eps, indices, outcome["adversarial"], config.batch_size)
                adaptive.append(AdaptiveRun(name, key, eps, threat_model,
                                            {k: v for k, v in attack.settings().items()
                                             if not isinstance(v, torch.Tensor)},
                                            len(indices), (outcome["adv_pred"] == y[indices]).float().mean().item()))
    timings["adaptive_s"] = time.perf_counter() - started
    before = linf.eps_star.clone()
    started = time.perf_counter()
    audited = torch.arange(min(config.audit_n or len(y), len(y)))  # the first audit_n evaluated images
    for eps, given in radii:
        attack = AutoAttack(model, eps=eps, seed=config.seed)
        outcome = run_attack(model, attack, x[audited], y[audited], device, config.batch_size,
                             desc=f"audit eps={eps:.4g}", clean_pred=clean_pred[audited], keep_adversarial=True)
        still_correct = outcome["adv_pred"] == y[audited]
        key = f"audit_autoattack@{eps:.4g}"
        for result in results.values():
            result.fold(model, x, y, key, eps, audited, outcome["adversarial"], config.batch_size)
        audited_radii.append(AuditRadius(eps, given, len(audited), still_correct.float().mean().item(),
                                         (before[audited] > eps).double().mean().item(),
                                         tuple(still_correct.tolist())))
    timings["audit_s"] = time.perf_counter() - started
    median = reference[1] if reference[1] is not None and math.isfinite(reference[1]) else None
    return Audit(AuditReference(reference[0], median), tuple(audited_radii), tuple(adaptive),
                 tuple(dict.fromkeys(skipped))), before


def run_attacks(model, runs, config, x, y, clean_pred, images, targets, device, timings=None, desc="",
                keep_all=False):
    """``{run key: run_attack outcome}`` for every AttackRun of ``runs`` over ``x`` (the evaluated images, on the
    device), each on its images; a run that continues another runs after it, from its result. ``timings`` (a
    dict) gets ``{key}_s`` per run, in the order of ``runs``. ``keep_all``: every outcome keeps its adversarial
    images (``adversarial``), which bound eps*."""
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
                                       keep_adversarial=keep_all or run.key in continued)
        seconds[run.key] = time.perf_counter() - started
    if timings is not None:
        timings.update({f"{run.key}_s": seconds[run.key] for run in runs})
    for outcome in outcomes.values() if not keep_all else ():
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
        eps_star = torch.tensor([math.inf if v is None else v for v in minimal_linf.eps_star], dtype=torch.float64)
        robust &= eps_star > eps
        sources.append("eps_star_linf")
    return WorstCase(n, int(robust.sum()), robust.float().mean().item(), tuple(sources), int(everyone.sum()),
                     robust[everyone].float().mean().item() if everyone.any() else None)


def robustness_curves(model, config, x, y, clean_pred, device, completed, evidence=None):
    """``({run key: (CurvePoint, ...)}, {(run key, eps): still_correct})`` for every untargeted
    white-box run on all evaluated images, at each eps of ``config.eps_sweep`` (the protocol's eps reuses its
    runs); the second part holds each image's outcome, for the checks. ``evidence`` (a list) gets each new run's
    ``(key@eps, eps, indices, adversarial images)``, which bound eps*."""
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
                                   desc=f" eps={eps:.4g}", keep_all=evidence is not None)
            still_correct = {key: outcome["adv_pred"] == y for key, outcome in outcomes.items()}
            if evidence is not None:
                evidence += [(f"{key}@{eps:.4g}", eps, everything[ALL_IMAGES], outcome.pop("adversarial"))
                             for key, outcome in outcomes.items()]
        for run in runs:
            swept[run.key, eps] = still_correct[run.key]
            curves.setdefault(run.key, []).append(
                CurvePoint(eps, still_correct[run.key].float().mean().item(), len(y)))
    return {key: tuple(points) for key, points in curves.items()}, swept


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


def find_checkpoints(variants, models_dir, data_dir, dataset, quick=False):
    """``(ready, warnings)``: the variants with a finished checkpoint of exactly that identity, and why the
    others are left out, with the command that trains them (the ``quick`` recipe or not, where there is no
    checkpoint). Every checkpoint is read here, before any attack runs, so a corrupt file or one that
    holds another variant or another data set's model stops the run before hours of work."""
    ready, warnings = [], []
    for variant in variants:
        path = variant.checkpoint_path(models_dir)
        if not path.exists():
            command = Recipe.from_options(quick=quick, dataset=dataset).train_command(variant, data_dir, models_dir)
            warnings.append(f"no checkpoint for {variant.name} in {models_dir}; create it with: {command}")
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
            command = Recipe.from_stored(checkpoint["metadata"]["recipe"]).train_command(
                variant, data_dir, models_dir, force=status == "diverged", state_amp=True)
            warnings.append(f"skipping {variant.name}: its checkpoint {path} is {status.replace('_', ' ')}; "
                            f"{'retrain it with' if status == 'diverged' else 'finish its training with'}: {command}")
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
    return (record.checkpoint.sha256 == job.sha256
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


def baseline_reference(variant, results_dir, method, folder):
    """``(source, median eps*)`` of the same-seed baseline's record in this results folder (the audit's radii scale
    with it, so every variant of a seed is audited at the same radii, the adversarially trained ones too), or None
    where there is none yet (the standard baseline itself, evaluated first in table order)."""
    if variant.is_baseline and variant.adv is None:
        return None
    path = Variant.baseline(variant.seed).results_path(results_dir, method)
    record = folder.get(path) if path.is_file() else None
    entry = record.minimal.get("linf") if record is not None else None
    if not entry:
        return None
    median = stats.median([v if v is not None else math.inf for v in entry.eps_star if v != 0])
    return (f"{Variant.baseline(variant.seed).name} median eps* (correct images)", median)


def baseline_model(variant, models_dir, device, model):
    """The same-seed baseline's model for the transfer attack, where ``model`` has a k-WTA layer and the baseline's
    finished checkpoint exists; else None."""
    if variant.is_baseline or not has_kwta(model):
        return None
    path = Variant.baseline(variant.seed).checkpoint_path(models_dir)
    if not path.is_file():
        return None
    checkpoint = load_checkpoint(path)
    if checkpoint["metadata"]["status"] != "complete":
        return None
    return model_from_checkpoint(checkpoint, device)


def print_warning(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)


def evaluate_variants(variants, method, models_dir, results_dir, data_dir, device, config, force=False,
                      log=print, warn=print_warning, *, dataset):
    """Evaluate the variants of ``method`` (and the baseline) that have finished ``dataset`` checkpoints in
    ``models_dir``, writing to ``results_dir/method`` (both folders of that data set: ``data.registry``).

    Returns the records of the evaluated variants, in table order.
    """
    method_dir = results_dir / method
    folder = RecordFolder(method_dir, method, warn, dataset)
    folder.records()  # a malformed or foreign result file stops the run before any attack
    ready, warnings = find_checkpoints(variants, models_dir, data_dir, dataset, config.quick)
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
            folder.write(replace(copy, path=path, method=method))
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
        evaluation = evaluate_model(model, x, y, metadata["num_classes"], device, variant_config(config, job.variant),
                                    audit_reference=baseline_reference(job.variant, results_dir, method, folder),
                                    transfer_source=baseline_model(job.variant, models_dir, device, model))
        evaluation = replace(evaluation, eval_config={**evaluation.eval_config, "device": str(device)})
        folder.write(ResultRecord.of(evaluation, path, dataset, method, job.variant,
                                     CheckpointInfo(str(job.checkpoint_path), job.sha256, metadata), machine()))
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
    failed = evaluation.failed_checks
    return (f"{variant.name}: clean acc {evaluation.clean_acc:.1%}"
            + ("" if evaluation.learned else " (DID NOT LEARN: near chance)")
            + (f", worst case over every attack {evaluation.worst_case.robust_acc:.1%}"
               if evaluation.worst_case else "")
            + "".join(f", {key} robust acc {entry.robust_acc:.1%}" for key, entry in evaluation.attacks.items())
            + "".join(f", median eps* {norm} " + (f"{entry.median:.4g}" if entry.median is not None
                                                   else f">= {entry.limit:.4g} (censored)")
                      for norm, entry in evaluation.minimal.items())
            + (f"; FAILED checks: {' '.join(failed)}" if failed else ""))
