"""One model's evaluation, one method per measure; each adversarial example is kept until it bounds eps*."""
import hashlib
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace

import torch

from attacks import ATTACKS, AutoAttack
from attacks.adaptive import ADAPTIVE, CannotRun
from attacks.base import ALL_IMAGES, QUERY_SUBSET, WHITE_BOX, eval_mode
from evaluation.checks import CompletedRun, per_image, run_checks
from evaluation.config import audit_radius
from evaluation.metrics import attack_metrics, make_targets, run_attack
from evaluation.minimal import Evidence, Search, median_correct, minimal_perturbations
from records.parts import AdaptiveRun, AttackResult, Audit, AuditRadius, AuditReference, CurvePoint, EpsStarEntry
from records.parts import WorstCase
from records.record import Evaluation
from sparsity.measure import evaluate_clean, learned
from sparsity.methods import get_method


def query_subset(n_eval, size, seed):
    """The seeded, sorted subset of evaluated images that query-based attacks get."""
    return torch.randperm(n_eval, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def images_sha256(x, y):
    """Per-image results of two records pair up only when this matches."""
    digest = hashlib.sha256()
    digest.update(x.detach().cpu().contiguous().numpy().tobytes())
    digest.update(y.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()


@contextmanager
def exact_fp32():
    """TF32 off (cuDNN uses it on CUDA by default): every number is computed in full fp32, on a GPU as on a CPU."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


@dataclass(frozen=True)
class Baseline:
    """From ``ModelSpec.baseline``: the ``(source, median eps*)`` audit multiples scale, and the transfer source."""

    reference: tuple | None = None
    surrogate: object = None


class ModelEvaluation:
    """``ModelEvaluation(model, spec, (x, y), protocol, baseline).run()``: the ``Evaluation`` of one model."""

    def __init__(self, model, spec, test_set, protocol, baseline=Baseline()):
        x, y = test_set
        device = next(model.parameters(), x).device  # a model without parameters runs where its images are
        self.model, self.spec, self.device = model, spec, device
        self.config = protocol.resolved(device, len(x))
        self.x_all, self.y_all = x.to(device), y
        self.x, self.y = self.x_all[:self.config.n_eval], y[:self.config.n_eval].cpu()
        self.reference, self.surrogate = baseline.reference, baseline.surrogate
        self.masking = get_method(spec.method) if spec.masks_gradients else None
        with eval_mode(model), torch.no_grad():
            self.num_classes = int(model(x[:1].to(device)).shape[1])
        self.images = {ALL_IMAGES: torch.arange(self.config.n_eval),
                       QUERY_SUBSET: query_subset(self.config.n_eval, self.config.query_n, self.config.seed)}
        self.timings = {}
        self.completed = []  # CompletedRun per fixed-eps run, for the checks and the worst case
        self.evidence = []  # (run key, eps, image indices, adversarial images): each bounds eps*
        self.clean_pred = None

    @contextmanager
    def timed(self, name):
        started = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started

    @exact_fp32()
    def run(self):
        with self.timed("clean_s"):
            clean = evaluate_clean(self.model, self.x_all, self.y_all, self.config.batch_size, self.device)
        self.clean_pred = clean["predictions"][:self.config.n_eval].cpu()
        runs = [run for name in self.config.attacks for run in ATTACKS[name].evaluation_runs(self.model, self.config)]
        attacks = self.attacks(runs)
        with self.timed("eps_sweep_s"):
            curves, swept = self.curves()
        results = self.eps_star()
        audit, before = self.audit(results) if "linf" in results else (None, None)
        settings = Search.of(self.config, masking=self.masking).settings()
        minimal = {norm: EpsStarEntry.measured(result, self.config.seed, settings,
                                               before if norm == "linf" else None)
                   for norm, result in results.items()}
        with self.timed("checks_s"):
            checks = run_checks(self, swept, minimal, audit)
        used = {run.images for run in runs}
        return Evaluation(clean_acc=clean["accuracy"], learned=learned(clean["accuracy"], self.num_classes),
                          n_test=len(self.y_all), sparsity=dict(clean["activation_sparsity"]),
                          worst_case=self.worst_case(minimal.get("linf")), attacks=attacks, curves=curves,
                          minimal=minimal, audit=audit, images_sha256=images_sha256(self.x, self.y),
                          checks=tuple(checks), timings=self.timings,
                          query_indices=tuple(self.images[QUERY_SUBSET].tolist()) if QUERY_SUBSET in used else (),
                          eval_config=self.config.to_dict())

    def attack_images(self, attack, indices, targets=None, prior=None):
        """``run_attack`` on the evaluated images ``indices`` (query-based attacks at their own batch size)."""
        batch_size = self.config.black_box_batch_size if attack.counts_queries else self.config.batch_size
        return run_attack(attack, self.x[indices], self.y[indices], targets, prior, batch_size)

    def run_all(self, runs, targets_of=lambda run: None, timed=False):
        """``{run key: outcome}``; a run that continues another runs after it (``timed``: as ``{key}_s``)."""
        outcomes = {}
        for run in [run for run in runs if run.after is None] + [run for run in runs if run.after is not None]:
            with self.timed(f"{run.key}_s") if timed else nullcontext():
                outcomes[run.key] = self.attack_images(run.attack, self.images[run.images], targets_of(run),
                                                       outcomes.get(run.after))
        return outcomes

    def attacks(self, runs):
        """``{run key: AttackResult}`` of every configured run at the protocol's eps; its examples join the evidence."""
        targets = make_targets(self.y, self.num_classes, self.config.seed)
        outcomes = self.run_all(runs, lambda run: targets[self.images[run.images]] if run.targeted else None,
                                timed=True)
        attacks = {}
        for run in runs:
            indices, outcome = self.images[run.images], outcomes[run.key]
            attacks[run.key] = AttackResult.of(run.attack, run.title, attack_metrics(
                outcome, self.y[indices], self.clean_pred[indices], run.targeted))
            self.completed.append(CompletedRun(run.key, run.attack.threat_model, run.targeted, indices,
                                               outcome["adv_pred"] == self.y[indices]))
            self.evidence.append(Evidence(run.key, self.config.eps, indices, outcome["adversarial"]))
        return attacks

    def curves(self):
        """``({run key: points}, {(run key, eps): still_correct})`` of the untargeted white-box runs over the sweep."""
        done = {run.key: run.still_correct for run in self.completed}
        everything = self.images[ALL_IMAGES]
        curves, swept = {}, {}
        for eps in sorted(self.config.eps_sweep):
            at_eps = replace(self.config, eps=eps)
            runs = [run for name in self.config.attacks for run in ATTACKS[name].evaluation_runs(self.model, at_eps)
                    if run.attack.threat_model == WHITE_BOX and not run.targeted and run.images == ALL_IMAGES]
            if eps == self.config.eps and all(run.key in done for run in runs):
                still_correct = {run.key: done[run.key] for run in runs}
            else:
                outcomes = self.run_all(runs)
                still_correct = {key: outcome["adv_pred"] == self.y for key, outcome in outcomes.items()}
                self.evidence += [Evidence(f"{key}@{eps:.4g}", eps, everything, outcome["adversarial"])
                                  for key, outcome in outcomes.items()]
            for run in runs:
                swept[run.key, eps] = still_correct[run.key]
                curves.setdefault(run.key, []).append(
                    CurvePoint(eps, still_correct[run.key].float().mean().item(), len(self.y)))
        return {key: tuple(points) for key, points in curves.items()}, swept

    def eps_star(self):
        """``{norm: MinimalPerturbation}``: FAB, every run so far, then the APGD bisection from the least of them."""
        results = {}
        for norm in self.config.minimal_norms:
            with self.timed(f"minimal_{norm}_s"):
                results[norm] = minimal_perturbations(self.model, self.x, self.y, norm,
                                                      Search.of(self.config, masking=self.masking), self.evidence)
        self.evidence.clear()  # folded into eps*: the memory goes back
        return results

    def fold(self, results, evidence):
        for result in results.values():
            result.fold(self.model, self.x, self.y, evidence, self.config.batch_size)

    def audit_radii(self, median):
        """``[(eps, as given)]``: multiples of the reference ``median`` eps* capped at 1, left out where it is None."""
        radii = []
        for given in self.config.audit_radii:
            number, multiple = audit_radius(given)
            if not multiple:
                radii.append((number, str(given)))
            elif median is not None:
                radii.append((min(1.0, number * median), str(given)))
        return sorted(dict(radii).items())

    def unbroken(self, results, indices, eps):
        """Those of ``indices`` no example so far fools within ``eps``: an attack at ``eps`` can add only there."""
        return indices[results["linf"].eps_star[indices] > eps]

    def audit(self, results):
        """``(Audit, eps* before AutoAttack)``: adaptive attacks, then AutoAttack at each radius, folded into eps*."""
        linf = results["linf"]
        scaled = any(audit_radius(given)[1] for given in self.config.audit_radii or ())
        # no multiple to scale: the record depends on no other record
        reference = (self.reference or ("own", median_correct(linf.eps_star))) if scaled else (None, None)
        median = reference[1] if reference[1] is not None and math.isfinite(reference[1]) else None
        radii = self.audit_radii(median)
        adaptive, skipped = self.adaptive_attacks(results, sorted([r for r, _ in radii] or [self.config.eps]))
        before = linf.eps_star.clone()
        audited = torch.arange(min(self.config.audit_n or len(self.y), len(self.y)))
        checked = []
        with self.timed("audit_s"):
            for eps, given in radii:
                todo = self.unbroken(results, audited, eps)
                outcome = self.attack_images(AutoAttack(self.model, eps=eps, seed=self.config.seed), todo)
                self.fold(results, Evidence(f"audit_autoattack@{eps:.4g}", eps, todo, outcome["adversarial"]))
                still_correct = torch.zeros(len(audited), dtype=torch.bool)
                still_correct[todo] = outcome["adv_pred"] == self.y[todo]
                checked.append(AuditRadius(eps, given, len(audited), still_correct.float().mean().item(),
                                           (before[audited] > eps).double().mean().item(),
                                           tuple(still_correct.tolist())))
        return Audit(AuditReference(reference[0], median), tuple(checked), tuple(adaptive),
                     tuple(dict.fromkeys(skipped))), before

    def adaptive_attacks(self, results, radii):
        """``([AdaptiveRun], [why one did not run])`` on a model whose method masks gradients, folded into eps*."""
        adaptive, skipped = [], []
        for eps in radii if self.masking else ():
            for name in self.config.adaptive_attacks:
                try:
                    attack, threat_model, which = ADAPTIVE[name](self.model, eps, self.config, self.surrogate,
                                                                 self.masking)
                except CannotRun as reason:
                    skipped.append(f"{name}: {reason}")
                    continue
                indices, key = self.images[which], f"{name}@{eps:.4g}"
                todo = self.unbroken(results, indices, eps)
                with self.timed(f"{name}_s"):
                    if len(todo):
                        outcome = self.attack_images(attack, todo)
                        self.fold(results, Evidence(key, eps, todo, outcome["adversarial"]))
                settings = {k: v for k, v in attack.settings().items() if not isinstance(v, torch.Tensor)}
                robust = len(self.unbroken(results, indices, eps)) / len(indices) if len(indices) else 0.0
                adaptive.append(AdaptiveRun(name, key, eps, threat_model, settings, len(indices), robust, len(todo)))
        return adaptive, skipped

    def worst_case(self, minimal_linf):
        """Per image (as RobustBench reports): robust only if every attack on it failed and L-inf eps* > eps."""
        n = self.config.n_eval
        if not self.completed and minimal_linf is None:
            return None
        robust = torch.ones(n, dtype=torch.bool)
        attacked = torch.zeros(n, dtype=torch.long)
        for run in self.completed:
            robust[run.indices] &= run.still_correct.cpu()
            attacked[run.indices] += 1
        everyone = attacked == len(self.completed)
        sources = [run.key for run in self.completed]
        if minimal_linf is not None:
            robust &= per_image(minimal_linf.eps_star) > self.config.eps
            sources.append("eps_star_linf")
        return WorstCase(n, int(robust.sum()), robust.float().mean().item(), tuple(sources), int(everyone.sum()),
                         robust[everyone].float().mean().item() if everyone.any() else None)
