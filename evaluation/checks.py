"""Sanity checks that catch broken or masked gradients, each passed, failed or not_run. A failed one does not stop
the evaluation: it is warned about, recorded and shown in every table and figure of that variant."""
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests

from attacks.base import BLACK_BOX, WHITE_BOX, eval_mode
from attacks.pgd import PGD
from records.parts import Check

PASSED, FAILED, NOT_RUN = "passed", "failed", "not_run"
LARGE_EPS_MIN_SUCCESS = 0.99
# Agreement checks test the images two outcomes disagree on (exact one-sided McNemar, Holm over one check's
# comparisons): a fixed number of points would be 5 points per image on 20 images and blind on 10,000.
SIGNIFICANCE = 0.05
# beyond this fraction of images with exactly zero input gradients, gradient-based robust accuracy means little
ZERO_GRADIENT_MAX_FRACTION = 0.01
MINIMAL_AGREEMENT = 1.10  # per image, FAB's eps* counts as above the bisection's when more than this factor


def excess_p_value(more, fewer):
    """One-sided exact McNemar p-value of ``more`` discordant images against ``fewer`` (1 where none disagree)."""
    return binomtest(more, more + fewer, 0.5, alternative="greater").pvalue if more + fewer else 1.0


def holm(p_values):
    return list(multipletests(p_values, method="holm")[1]) if p_values else []


def p_text(p_values):
    return ", ".join(f"{p:.3g}" for p in p_values)


def discordant(still_a, still_b):
    """``(a robust where b fooled, b robust where a fooled)``."""
    return int((still_a & ~still_b).sum()), int((still_b & ~still_a).sum())


@dataclass
class CompletedRun:
    """One attack run of an evaluation, kept for the checks: which eval images it attacked and its outcome."""

    key: str
    threat_model: str
    targeted: bool
    indices: torch.Tensor  # into the evaluated images
    still_correct: torch.Tensor  # bool per attacked image: predicted as its true label after the attack

    def robust_acc(self, indices):
        return self.correct_on(indices).float().mean().item()

    def correct_on(self, indices):
        """Whether each of the evaluated images ``indices`` (all attacked by this run) is still correct."""
        position = {i: p for p, i in enumerate(self.indices.tolist())}
        rows = torch.tensor([position[i] for i in indices.tolist()], dtype=torch.long)
        return self.still_correct[rows].cpu()

    def covers(self, indices):
        return set(indices.tolist()) <= set(self.indices.tolist())


def check(name, status, detail):
    if status == FAILED:
        warnings.warn(f"sanity check {name} failed: {detail}", stacklevel=2)
    return Check(name, status, detail)


def check_images(ev):
    return min(ev.config.check_n, len(ev.x))


def check_large_eps(ev):
    """PGD with eps = 1 must fool the model almost always; if not, the gradients are broken or masked."""
    name = "pgd_eps1_success"
    config = ev.config
    n = check_images(ev)
    if n == 0:
        return check(name, NOT_RUN, "check_n is 0")
    steps = config.settings_of(PGD.name).steps
    attack = PGD(ev.model, eps=1.0, alpha=2.5 / steps, steps=steps, seed=config.seed)
    rate = ev.attack_images(attack, torch.arange(n))["success"].float().mean().item()
    return check(name, PASSED if rate >= LARGE_EPS_MIN_SUCCESS else FAILED,
                 f"untargeted PGD with eps=1 (step 2.5/steps, uniform random start) on the first {n} evaluated "
                 f"images: success_rate_all {rate:.4f} (must be >= {LARGE_EPS_MIN_SUCCESS})")


def check_eps_monotone(ev, swept):
    """PGD at 2·eps (the curve's run where the sweep has it) must not leave more images correct beyond chance."""
    name = "robust_acc_monotone_in_eps"
    config = ev.config
    n = check_images(ev)
    pgd = next((run for run in ev.completed if run.key == "pgd"), None)
    if n == 0 or pgd is None:
        return check(name, NOT_RUN, "check_n is 0" if n == 0 else "PGD was not run")
    double_eps = min(2 * config.eps, 1.0)
    if (pgd.key, double_eps) in swept:
        still_correct = swept[pgd.key, double_eps][:n]
    else:
        settings = config.settings_of(PGD.name)
        attack = PGD(ev.model, eps=double_eps, alpha=config.alpha, steps=settings.steps, restarts=settings.restarts,
                     seed=config.seed)
        still_correct = ev.attack_images(attack, torch.arange(n))["adv_pred"] == ev.y[:n]
    at_eps = pgd.correct_on(torch.arange(n))
    still_correct = still_correct.cpu()
    more, fewer = discordant(still_correct, at_eps)
    p_value = excess_p_value(more, fewer)
    return check(name, FAILED if p_value < SIGNIFICANCE else PASSED,
                 f"on the first {n} evaluated images: PGD robust_acc {at_eps.float().mean().item():.4f} at "
                 f"eps={config.eps:.5g}, {still_correct.float().mean().item():.4f} at eps={double_eps:.5g}; {more} "
                 f"images correct only at the larger eps, {fewer} only at the smaller (exact McNemar one-sided "
                 f"p={p_value:.3g}, fails below {SIGNIFICANCE})")


def check_black_box_not_stronger(completed):
    """A black-box attack beating the strongest white-box one beyond chance means masked gradients."""
    name = "black_box_not_stronger_than_white_box"
    white = [run for run in completed if run.threat_model == WHITE_BOX and not run.targeted]
    black = [run for run in completed if run.threat_model == BLACK_BOX and not run.targeted]
    if not white or not black:
        return check(name, NOT_RUN, "needs an untargeted white-box and an untargeted black-box attack")
    details, p_values = [], []
    for run in black:
        common = [w for w in white if w.covers(run.indices)]
        if not common:
            continue
        best = min(common, key=lambda w: w.robust_acc(run.indices))
        more, fewer = discordant(best.correct_on(run.indices), run.correct_on(run.indices))
        p_values.append(excess_p_value(more, fewer))
        details.append(f"{run.key} robust_acc {run.robust_acc(run.indices):.4f} vs best white-box {best.key} "
                       f"{best.robust_acc(run.indices):.4f} on {len(run.indices)} images ({more} fooled only by "
                       f"{run.key}, {fewer} only by {best.key})")
    if not details:
        return check(name, NOT_RUN, "no black-box run shares its images with a white-box run")
    adjusted = holm(p_values)
    failed = any(p < SIGNIFICANCE for p in adjusted)
    return check(name, FAILED if failed else PASSED,
                 f"on the same images: {'; '.join(details)} (exact McNemar one-sided, Holm-adjusted p "
                 f"{p_text(adjusted)}; fails below {SIGNIFICANCE})")


def check_white_box_agree(completed):
    """A white-box attack leaving more images correct than the strongest one beyond chance is named unreliable."""
    name = "white_box_attacks_agree"
    white = [run for run in completed if run.threat_model == WHITE_BOX and not run.targeted]
    if not white or len(completed) < 2:
        return check(name, NOT_RUN, "needs an untargeted white-box attack and another attack")
    details, compared = [], []
    for images in dict.fromkeys(tuple(run.indices.tolist()) for run in completed):
        indices = torch.tensor(images, dtype=torch.long)
        runs = {run.key: run for run in completed if run.covers(indices)}
        if len(runs) < 2 or not any(run.key in runs for run in white):
            continue
        accuracy = {key: run.robust_acc(indices) for key, run in runs.items()}
        lowest = min(accuracy, key=accuracy.get)
        for run in white:
            if run.key in runs and run.key != lowest:
                more, fewer = discordant(run.correct_on(indices), runs[lowest].correct_on(indices))
                compared.append((run.key, excess_p_value(more, fewer)))
        details.append(f"on the same {len(images)} images: "
                       + ", ".join(f"{key} {value:.4f}" for key, value in accuracy.items()) + f" (lowest: {lowest})")
    if not details:
        return check(name, NOT_RUN, "no white-box run shares its images with another run")
    adjusted = holm([p for _, p in compared])
    unreliable = list(dict.fromkeys(key for (key, _), p in zip(compared, adjusted) if p < SIGNIFICANCE))
    return check(name, FAILED if unreliable else PASSED,
                 "robust_acc " + "; ".join(details)
                 + (f"; unreliable for this model: {' '.join(unreliable)}" if unreliable else "")
                 + f" (a white-box attack fails where it leaves more images correct than the lowest beyond chance: "
                   f"exact McNemar one-sided on the images they disagree on, Holm-adjusted, below {SIGNIFICANCE})")


def check_zero_gradients(ev):
    """The fraction of images whose cross-entropy input gradient is exactly zero (dead or saturated units)."""
    name = "zero_input_gradients"
    config = ev.config
    n = check_images(ev)
    if n == 0:
        return check(name, NOT_RUN, "check_n is 0")
    zero = 0
    with eval_mode(ev.model):
        for start in range(0, n, config.batch_size):
            batch = ev.x[start:min(start + config.batch_size, n)].detach().clone().requires_grad_(True)
            with torch.enable_grad():
                loss = F.cross_entropy(ev.model(batch), ev.y[start:start + len(batch)].to(ev.device), reduction="sum")
                (grad,) = torch.autograd.grad(loss, batch)
            zero += int((grad.flatten(1) == 0).all(1).sum())
    fraction = zero / n
    return check(name, FAILED if fraction > ZERO_GRADIENT_MAX_FRACTION else PASSED,
                 f"{zero} of the first {n} evaluated images ({fraction:.4f}) have an exactly zero cross-entropy "
                 f"input gradient (at most {ZERO_GRADIENT_MAX_FRACTION} allowed)")


def per_image(values):
    return torch.tensor([math.inf if v is None else v for v in values], dtype=torch.float64)


def check_minimal_methods_agree(minimal):
    """FAB, the minimum-norm attack, finding clearly larger eps* than the bisection beyond chance is weak here."""
    name = "minimal_perturbation_methods_agree"
    if not minimal:
        return check(name, NOT_RUN, "no minimal perturbation was measured")
    details, p_values = [], []
    for norm, entry in minimal.items():
        fab, bisection = per_image(entry.fab_eps), per_image(entry.pgd_eps)
        if entry.settings.get("fab_steps") == 0:
            continue  # FAB off: nothing to compare
        more = int((fab > MINIMAL_AGREEMENT * bisection).sum())
        fewer = int((bisection > MINIMAL_AGREEMENT * fab).sum())
        p_values.append(excess_p_value(more, fewer))
        details.append(f"{norm}: FAB larger on {more} images, the bisection on {fewer} (FAB median "
                       f"{entry.fab.median}, bisection median {entry.pgd.median})")
    if not details:
        return check(name, NOT_RUN, "FAB was off")
    adjusted = holm(p_values)
    return check(name, FAILED if any(p < SIGNIFICANCE for p in adjusted) else PASSED,
                 f"on the same {next(iter(minimal.values())).n} images: {'; '.join(details)} (larger: by more "
                 f"than {MINIMAL_AGREEMENT - 1:.0%}, inf = censored; exact sign test one-sided, Holm-adjusted p "
                 f"{p_text(adjusted)}, fails below {SIGNIFICANCE})")


def check_eps_star_matches_autoattack(minimal, audit):
    """At each audit radius, eps* before the audit must not claim more images robust than AutoAttack leaves."""
    name = "eps_star_matches_autoattack"
    if audit is None or not audit.radii:
        return check(name, NOT_RUN, "no audit ran (--audit-radii none, or no L-inf eps*)")
    before = per_image(minimal["linf"].eps_star_before_audit)
    details, p_values = [], []
    for entry in audit.radii:
        radius = entry.eps
        autoattack = torch.tensor(entry.autoattack_still_correct, dtype=torch.bool)
        claimed = before[:len(autoattack)] > radius  # the audit ran on the first n evaluated images
        more, fewer = discordant(claimed, autoattack)
        p_values.append(excess_p_value(more, fewer))
        details.append(f"radius {radius:.4g}: eps* curve robust_acc {claimed.float().mean().item():.4f}, AutoAttack "
                       f"{autoattack.float().mean().item():.4f} on {len(autoattack)} images ({more} robust by eps* "
                       f"only, {fewer} by AutoAttack only)")
    adjusted = holm(p_values)
    failing = [f"{entry.eps:.4g}" for entry, p in zip(audit.radii, adjusted) if p < SIGNIFICANCE]
    overstated = f"; eps* overstates robustness at radius {' '.join(failing)}" if failing else ""
    return check(name, FAILED if failing else PASSED,
                 "; ".join(details) + overstated
                 + f" (exact McNemar one-sided, Holm-adjusted p {p_text(adjusted)}; fails below {SIGNIFICANCE})")


def run_checks(ev, swept=None, minimal=None, audit=None):
    return [check_large_eps(ev),
            check_eps_monotone(ev, swept or {}),
            check_black_box_not_stronger(ev.completed),
            check_white_box_agree(ev.completed),
            check_zero_gradients(ev),
            check_minimal_methods_agree(minimal),
            check_eps_star_matches_autoattack(minimal, audit)]
