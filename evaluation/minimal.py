"""The smallest perturbation that fools each image (eps*), found two ways and combined.

- **FAB** (``attacks.fab``), the minimum-norm attack of the official AutoAttack package;
- **PGD bisection**: per image, a bisection over eps with the project's PGD (per-sample eps tensors, the
  protocol's steps, step 2.5 eps / steps, early stop), which gives an upper bound: it keeps the smallest
  perturbation PGD found to fool, and stops once PGD has failed at (1 - TOLERANCE) times it. PGD starts from the
  clean image here (no random start): a bisection needs an oracle that answers the same question the same way,
  so that "PGD fails at 0.99 eps*" can be checked again by anyone.

An image's eps* is the smaller of the two, with the example that achieves it checked once more to fool the model;
0 for an image the model misclassifies clean; inf (censored: at least the search limit) where neither fools it
within the limit. Censored images are counted, never dropped: the median is censored when a middle value is
(``common.stats``), and the robust-accuracy curve read off the distribution counts them as robust up to the limit.
"""
import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from attacks.base import eval_mode
from attacks.fab import FAB
from attacks.pgd import PGD
from common import stats

NORMS = ("linf", "l2")
CLEAN, FAB_METHOD, PGD_METHOD, CENSORED = "clean", "fab", "pgd", "censored"
BISECTION_ROUNDS = 20  # from the limit down to 1e-6 of it, at least
TOLERANCE = 0.01  # PGD failed at (1 - TOLERANCE) x eps*: the bound is within 1% of what PGD can find
CURVE_POINTS = 101  # robust accuracy read off eps* at 0, limit/100, ..., limit
LIMIT_PER_EPS = 4  # default search limit: 4 x the protocol's L-inf eps


def search_limit(norm, linf_limit, image_shape):
    """The L-inf limit, or for L2 the radius of the ball that holds the L-inf ball of that limit (limit x sqrt(d))."""
    return linf_limit if norm == "linf" else linf_limit * math.sqrt(math.prod(image_shape))


def perturbation_size(delta, norm):
    """Per-sample L-inf or L2 norm of ``delta``, in float64."""
    flat = delta.flatten(1).double()
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


@torch.no_grad()
def fools(model, x, y):
    with eval_mode(model):
        return model(x).argmax(1) != y


def fab_minimal(model, x, y, norm, limit, steps, seed):
    """``(size, x_adv)``: per image the size of FAB's smallest fooling perturbation (0 where misclassified clean,
    inf where FAB finds none within ``limit``) and that example (x where none)."""
    x_adv, _ = FAB(model, norm=norm, steps=steps, seed=seed)(x, y)
    size = perturbation_size(x_adv - x, norm)
    found = fools(model, x_adv, y) & (size <= limit)
    size = torch.where(found, size, math.inf)
    size[fools(model, x, y)] = 0.0
    return size, torch.where(found.reshape(-1, *[1] * (x.dim() - 1)), x_adv, x)


def pgd_bisection(model, x, y, norm, limit, steps, seed):
    """``(size, x_adv, converged)``: per image the smallest perturbation PGD found to fool (0 where misclassified
    clean, inf where PGD at ``limit`` does not fool), that example, and whether PGD then failed at exactly
    (1 - TOLERANCE) x its size within BISECTION_ROUNDS."""
    best = torch.where(fools(model, x, y), 0.0, math.inf).double()
    x_best = x.clone()
    lower = torch.zeros_like(best)
    probe = torch.full_like(best, float(limit))
    converged = best == 0
    active = (~converged).nonzero().squeeze(1)
    for _ in range(BISECTION_ROUNDS + 1):
        if active.numel() == 0:
            break
        eps = probe[active].to(x.dtype)
        attack = PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=False, norm=norm, seed=seed)
        x_adv, _ = attack(x[active], y[active])
        fooled = fools(model, x_adv, y[active])
        size = perturbation_size(x_adv - x[active], norm)
        better = fooled & (size < best[active])
        best[active[better]] = size[better]
        x_best[active[better]] = x_adv[better]
        failed = active[~fooled]
        lower[failed] = torch.maximum(lower[failed], probe[failed])
        converged[failed] |= torch.isinf(best[failed]) | (probe[failed] == (1 - TOLERANCE) * best[failed])
        # halve the gap while it is wide; then the probe at (1 - TOLERANCE) x the best size, which certifies it
        probe = torch.where(lower < (1 - 2 * TOLERANCE) * best, (lower + best) / 2, (1 - TOLERANCE) * best)
        active = (~converged).nonzero().squeeze(1)
    return best, x_best, converged


@dataclass
class MinimalPerturbation:
    """Per image (in the order given): eps* and the method that found it, each method's own size, the example."""

    norm: str
    limit: float
    eps_star: torch.Tensor  # float64; 0 misclassified clean, inf censored
    method: list  # CLEAN, FAB_METHOD, PGD_METHOD or CENSORED
    fab: torch.Tensor
    pgd: torch.Tensor
    pgd_converged: torch.Tensor  # bool
    x_adv: torch.Tensor  # the example achieving eps* (the clean image where eps* is 0 or censored)


def combine(model, x, y, fab, pgd):
    """eps*, method and example per image from both methods' ``(size, x_adv)``: the smaller (FAB's on a tie)
    whose example fools the model when checked again here, else the other one's, else censored."""
    eps_star = torch.full_like(fab[0], math.inf)
    method = [CENSORED] * len(x)
    x_star = x.clone()
    clean_wrong = fools(model, x, y)
    eps_star[clean_wrong] = 0.0
    candidates = [(FAB_METHOD, *fab, fab[0] <= pgd[0]), (PGD_METHOD, *pgd, pgd[0] < fab[0])]
    fooling = {name: fools(model, x_adv, y) for name, _, x_adv, _ in candidates}
    for preferred in (True, False):
        for name, size, x_adv, smaller in candidates:
            take = torch.isinf(eps_star) & torch.isfinite(size) & (smaller == preferred) & fooling[name]
            eps_star[take], x_star[take] = size[take], x_adv[take]
            for index in take.nonzero().squeeze(1).tolist():
                method[index] = name
    for index in clean_wrong.nonzero().squeeze(1).tolist():
        method[index] = CLEAN
    return eps_star, method, x_star


def minimal_perturbations(model, x, y, device, norm, linf_limit, pgd_steps, fab_steps, batch_size, seed):
    """``MinimalPerturbation`` of every image of ``x`` (float in [0, 1], on any device) in ``norm``, searched up
    to ``search_limit(norm, linf_limit, ...)``; batches of ``batch_size`` move to ``device`` one at a time."""
    limit = search_limit(norm, linf_limit, x.shape[1:])
    parts = []
    with tqdm(total=len(x), desc=f"eps* {norm}", unit="img", leave=False) as bar:
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
            fab = fab_minimal(model, xb, yb, norm, limit, fab_steps, seed)
            pgd_size, pgd_x, converged = pgd_bisection(model, xb, yb, norm, limit, pgd_steps, seed)
            eps_star, method, x_star = combine(model, xb, yb, fab, (pgd_size, pgd_x))
            parts.append((eps_star.cpu(), method, fab[0].cpu(), pgd_size.cpu(), converged.cpu(), x_star.cpu()))
            bar.update(len(xb))
    eps_star, method, fab, pgd, converged, x_adv = zip(*parts)
    return MinimalPerturbation(norm, limit, torch.cat(eps_star), [m for batch in method for m in batch],
                               torch.cat(fab), torch.cat(pgd), torch.cat(converged), torch.cat(x_adv))


def robust_accuracy_curve(eps_star, limit, points=CURVE_POINTS):
    """Robust accuracy at ``points`` eps from 0 to ``limit``: the fraction of images with eps* above each."""
    grid = torch.linspace(0, limit, points, dtype=torch.float64)
    robust = (eps_star.unsqueeze(0) > grid.unsqueeze(1)).double().mean(1)
    return [{"eps": float(e), "robust_acc": float(r)} for e, r in zip(grid, robust)]


def json_value(value):
    """A finite float, or None for an infinite one (past the search limit in that direction)."""
    return float(value) if math.isfinite(value) else None


def median_entry(values):
    """``{median, median_censored}`` of per-image values (inf = censored)."""
    median = stats.median(values.tolist())
    return {"median": json_value(median), "median_censored": math.isinf(median)}


def minimal_entry(result, seed, settings):
    """The record's entry for one norm: counts, per-image values (null = censored), medians with the bootstrap
    interval, the robust-accuracy curve and the settings."""
    eps_star = result.eps_star
    low, high = stats.bootstrap_median_interval(eps_star, seed=seed)
    return {
        "norm": result.norm, "limit": result.limit, "n": len(eps_star),
        "n_clean_misclassified": result.method.count(CLEAN), "n_censored": result.method.count(CENSORED),
        "n_by_method": {name: result.method.count(name) for name in (FAB_METHOD, PGD_METHOD)},
        "pgd_not_converged": int((~result.pgd_converged).sum()),
        **median_entry(eps_star),
        "interval": {"low": json_value(low), "high": json_value(high), "level": stats.CONFIDENCE,
                     "resamples": stats.BOOTSTRAP_RESAMPLES},
        "fab": median_entry(result.fab), "pgd": median_entry(result.pgd),
        "curve": robust_accuracy_curve(eps_star, result.limit),
        "eps_star": [json_value(v) for v in eps_star.tolist()],
        "method": result.method,
        "fab_eps": [json_value(v) for v in result.fab.tolist()],
        "pgd_eps": [json_value(v) for v in result.pgd.tolist()],
        "settings": settings,
    }
