"""Sanity checks that catch broken or masked gradients. Each is recorded as passed, failed or not_run.

A failed check does not stop the evaluation: it is warned about, written into
the result file and shown in every table and figure of that variant.
"""
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attacks.base import BLACK_BOX, WHITE_BOX, eval_mode
from attacks.pgd import PGD
from evaluation.metrics import run_attack

PASSED, FAILED, NOT_RUN = "passed", "failed", "not_run"
LARGE_EPS_MIN_SUCCESS = 0.99
BLACK_BOX_TOLERANCE = 0.02  # robust accuracy a black-box attack may be below the white-box ones by
WHITE_BOX_TOLERANCE = 0.03  # robust accuracy a white-box attack may be above the lowest any attack reached by
# Exactly zero input gradients on more than this fraction of images: the loss surface is flat where attacks
# look (dead or saturated units), so gradient-based robust accuracy means little.
ZERO_GRADIENT_MAX_FRACTION = 0.01
MINIMAL_AGREEMENT = 1.10  # FAB's median eps* may be this much above the PGD bisection's


@dataclass
class CompletedRun:
    """One attack run of an evaluation, kept for the checks: which eval images it attacked and its outcome."""

    key: str
    threat_model: str
    targeted: bool
    indices: torch.Tensor  # into the evaluated images
    still_correct: torch.Tensor  # bool per attacked image: predicted as its true label after the attack

    def robust_acc(self, indices):
        """Robust accuracy over the evaluated images ``indices``, all of which this run attacked."""
        position = {i: p for p, i in enumerate(self.indices.tolist())}
        rows = torch.tensor([position[i] for i in indices.tolist()], dtype=torch.long)
        return self.still_correct[rows].float().mean().item()

    def covers(self, indices):
        return set(indices.tolist()) <= set(self.indices.tolist())


def check(name, status, detail):
    if status == FAILED:
        warnings.warn(f"sanity check {name} failed: {detail}", stacklevel=2)
    return {"name": name, "status": status, "detail": detail}


def check_large_eps(model, config, x, y, device, clean_pred):
    """PGD with eps = 1 must fool the model almost always; if not, the gradients are broken or masked."""
    name = "pgd_eps1_success"
    n = min(config.check_n, len(x))
    if n == 0:
        return check(name, NOT_RUN, "check_n is 0")
    attack = PGD(model, eps=1.0, alpha=2.5 / config.steps, steps=config.steps, seed=config.seed)
    rate = run_attack(model, attack, x[:n], y[:n], device, config.batch_size, desc="check eps=1",
                      clean_pred=clean_pred[:n])["success"]
    rate = rate.float().mean().item()
    return check(name, PASSED if rate >= LARGE_EPS_MIN_SUCCESS else FAILED,
                 f"untargeted PGD with eps=1 (step 2.5/steps, uniform random start) on the first {n} evaluated "
                 f"images: success_rate_all {rate:.4f} (must be >= {LARGE_EPS_MIN_SUCCESS})")


def check_eps_monotone(model, config, x, y, device, completed, clean_pred, swept):
    """A bigger budget must not leave more images correct; one image of slack for random starts. PGD at 2·eps
    is the robustness curve's run where the sweep has that eps (``swept``), else run here."""
    name = "robust_acc_monotone_in_eps"
    n = min(config.check_n, len(x))
    pgd = next((run for run in completed if run.key == "pgd"), None)
    if n == 0 or pgd is None:
        return check(name, NOT_RUN, "check_n is 0" if n == 0 else "PGD was not run")
    double_eps = min(2 * config.eps, 1.0)
    if (pgd.key, double_eps) in swept:
        still_correct = swept[pgd.key, double_eps][:n]
    else:
        attack = PGD(model, eps=double_eps, alpha=config.alpha, steps=config.steps, restarts=config.restarts,
                     seed=config.seed)
        double = run_attack(model, attack, x[:n], y[:n], device, config.batch_size, desc="check 2*eps",
                            clean_pred=clean_pred[:n])
        still_correct = double["adv_pred"] == y[:n]
    robust = pgd.robust_acc(torch.arange(n))
    robust_double = still_correct.float().mean().item()
    return check(name, PASSED if robust_double <= robust + 1 / n else FAILED,
                 f"on the first {n} evaluated images: PGD robust_acc {robust:.4f} at eps={config.eps:.5g}, "
                 f"{robust_double:.4f} at eps={double_eps:.5g} (must not rise by more than one image)")


def check_black_box_not_stronger(completed):
    """A black-box attack fooling clearly more images than the white-box ones, on the same images, means the
    white-box attacks' gradients are masked."""
    name = "black_box_not_stronger_than_white_box"
    white = [run for run in completed if run.threat_model == WHITE_BOX and not run.targeted]
    black = [run for run in completed if run.threat_model == BLACK_BOX and not run.targeted]
    if not white or not black:
        return check(name, NOT_RUN, "needs an untargeted white-box and an untargeted black-box attack")
    details, failed = [], False
    for run in black:
        common = [w for w in white if w.covers(run.indices)]
        if not common:
            continue
        black_acc = run.robust_acc(run.indices)
        white_acc = min(w.robust_acc(run.indices) for w in common)
        failed |= black_acc < white_acc - BLACK_BOX_TOLERANCE
        details.append(f"{run.key} robust_acc {black_acc:.4f} vs best white-box {white_acc:.4f}")
    if not details:
        return check(name, NOT_RUN, "no black-box run shares its images with a white-box run")
    return check(name, FAILED if failed else PASSED,
                 f"on the same images: {'; '.join(details)} (black-box may be lower by at most "
                 f"{BLACK_BOX_TOLERANCE:.2f})")


def check_white_box_agree(completed):
    """No white-box attack may leave clearly more images correct than the lowest robust accuracy any attack
    (white- or black-box, untargeted or targeted) reached on the same images: one that does (PGD on a masked
    model, against APGD, Square or the adaptive NES) is named unreliable for this model."""
    name = "white_box_attacks_agree"
    white = [run for run in completed if run.threat_model == WHITE_BOX and not run.targeted]
    if not white or len(completed) < 2:
        return check(name, NOT_RUN, "needs an untargeted white-box attack and another attack")
    details, unreliable = [], []
    for images in dict.fromkeys(tuple(run.indices.tolist()) for run in completed):
        indices = torch.tensor(images, dtype=torch.long)
        accuracy = {run.key: run.robust_acc(indices) for run in completed if run.covers(indices)}
        if len(accuracy) < 2 or not any(run.key in accuracy for run in white):
            continue
        lowest = min(accuracy, key=accuracy.get)
        above = [run.key for run in white if run.key in accuracy
                 and accuracy[run.key] > accuracy[lowest] + WHITE_BOX_TOLERANCE]
        unreliable += [key for key in above if key not in unreliable]
        details.append(f"on the same {len(images)} images: "
                       + ", ".join(f"{key} {value:.4f}" for key, value in accuracy.items()) + f" (lowest: {lowest})")
    if not details:
        return check(name, NOT_RUN, "no white-box run shares its images with another run")
    return check(name, FAILED if unreliable else PASSED,
                 "robust_acc " + "; ".join(details)
                 + (f"; unreliable for this model: {' '.join(unreliable)}" if unreliable else "")
                 + f" (a white-box attack may exceed the lowest by at most {WHITE_BOX_TOLERANCE:.2f})")


def check_zero_gradients(model, config, x, y, device):
    """The fraction of images whose cross-entropy input gradient is exactly zero: dead or saturated units
    before the output give attacks nothing to follow."""
    name = "zero_input_gradients"
    n = min(config.check_n, len(x))
    if n == 0:
        return check(name, NOT_RUN, "check_n is 0")
    zero = 0
    with eval_mode(model):
        for start in range(0, n, config.batch_size):
            batch = x[start:min(start + config.batch_size, n)].to(device).requires_grad_(True)
            with torch.enable_grad():
                loss = F.cross_entropy(model(batch), y[start:start + len(batch)].to(device), reduction="sum")
                (grad,) = torch.autograd.grad(loss, batch)
            zero += int((grad.flatten(1) == 0).all(1).sum())
    fraction = zero / n
    return check(name, FAILED if fraction > ZERO_GRADIENT_MAX_FRACTION else PASSED,
                 f"{zero} of the first {n} evaluated images ({fraction:.4f}) have an exactly zero cross-entropy "
                 f"input gradient (at most {ZERO_GRADIENT_MAX_FRACTION} allowed)")


def check_minimal_methods_agree(minimal):
    """FAB's median eps* must not be clearly above the PGD bisection's: FAB is the minimum-norm attack, so where
    it finds larger perturbations than a bisection with PGD, it is weak on this model."""
    name = "minimal_perturbation_methods_agree"
    if not minimal:
        return check(name, NOT_RUN, "no minimal perturbation was measured")
    details, failed = [], False
    for norm, entry in minimal.items():
        fab, pgd = (math.inf if entry[key]["median"] is None else entry[key]["median"] for key in ("fab", "pgd"))
        failed |= fab > MINIMAL_AGREEMENT * pgd
        details.append(f"{norm}: FAB median {fab:.4g}, PGD bisection median {pgd:.4g}")
    return check(name, FAILED if failed else PASSED,
                 f"on the same {next(iter(minimal.values()))['n']} images: {'; '.join(details)} (inf: censored at "
                 f"the search limit; FAB may exceed PGD by at most {MINIMAL_AGREEMENT - 1:.0%})")


def run_checks(model, config, x, y, device, completed, clean_pred, swept=None, minimal=None):
    """Every check, in a fixed order; ``x, y`` are the evaluated images and ``clean_pred`` the model's predictions on
    them, ``completed`` the attack runs, ``swept`` the robustness curves' outcomes ``{(run key, eps): still
    correct}``, ``minimal`` the record's minimal-perturbation entries (norm -> entry)."""
    return [check_large_eps(model, config, x, y, device, clean_pred),
            check_eps_monotone(model, config, x, y, device, completed, clean_pred, swept or {}),
            check_black_box_not_stronger(completed),
            check_white_box_agree(completed),
            check_zero_gradients(model, config, x, y, device),
            check_minimal_methods_agree(minimal)]
