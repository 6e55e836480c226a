"""The smallest perturbation that fools each image (eps*): the least of FAB, every fixed-eps run's re-checked examples
and a seeded APGD bisection that certifies its bound (the oracle failed at (1 - TOLERANCE) eps*, re-checkable by
anyone). 0: misclassified clean; inf: censored (counted, never dropped), nothing fools it within the limit."""
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from attacks.autoattack import apgd_per_image
from attacks.base import eval_mode
from attacks.fab import FAB
from common import stats

NORMS = ("linf", "l2")
CLEAN, FAB_METHOD, BISECTION_METHOD, CENSORED = "clean", "fab", "bisection", "censored"
ATTACK_PREFIX = "attack:"  # method of an eps* set by a fixed-eps attack run: "attack:<run key>"
BISECTION_ROUNDS = 20  # from the limit down to 1e-6 of it, at least
TOLERANCE = 0.01  # the oracle failed at (1 - TOLERANCE) x eps*: the bound is within 1% of what APGD can find
CURVE_POINTS = 101  # robust accuracy read off eps* at 0, limit/100, ..., limit
LIMIT_PER_EPS = 4  # default search limit: 4 x the protocol's L-inf eps


@dataclass(frozen=True)
class Search:
    """How hard the search looks; ``masking``: the method whose straight-through backward the oracle also uses."""

    fab_steps: int = 100
    fab_restarts: int = 2
    targets: int = 3
    bisection_steps: int = 50
    seed: int = 0
    straight_through: tuple = ()
    masking: object = None
    limit: float = 1.0  # the L-inf search limit (L2's: search_limit)
    batch_size: int = 256

    @classmethod
    def of(cls, config, masking=None):
        fab = config.settings_of("fab")
        return cls(fab_steps=fab.steps, fab_restarts=fab.restarts, targets=fab.targets,
                   bisection_steps=config.settings_of("pgd").steps, seed=config.seed,
                   straight_through=("identity",) if masking else (), masking=masking, limit=config.minimal_limit,
                   batch_size=config.batch_size)

    def settings(self):
        title = self.masking.title if self.masking else ""
        through = "".join(f"; then through {title} with BPDA ({mode})" for mode in self.straight_through)
        return {"fab_steps": self.fab_steps, "fab_restarts": self.fab_restarts, "targets": self.targets,
                "bisection_attack": "apgd-ce + apgd-t (random start, seeded)" + through,
                "bisection_start": "the least bound of FAB and the attacks run before it, certified first",
                "bisection_steps": self.bisection_steps, "bisection_rounds": BISECTION_ROUNDS,
                "tolerance": TOLERANCE}


def search_limit(norm, linf_limit, image_shape):
    """The L-inf limit, or for L2 the radius of the ball that holds that L-inf ball (limit x sqrt(d))."""
    return linf_limit if norm == "linf" else linf_limit * math.sqrt(math.prod(image_shape))


def perturbation_size(delta, norm):
    return torch.linalg.vector_norm(delta.flatten(1).double(), math.inf if norm == "linf" else 2, dim=1)


@torch.no_grad()
def fools(model, x, y, batch_size=None):
    with eval_mode(model):
        if batch_size is None or not len(x):
            return model(x).argmax(1) != y
        return torch.cat([model(x[s:s + batch_size]).argmax(1) != y[s:s + batch_size]
                          for s in range(0, len(x), batch_size)])


def fab_minimal(model, x, y, norm, limit, search):
    """``(size, x_adv)``: FAB's smallest fooling perturbation per image (inf: none) and that example (x where none)."""
    size = torch.full((len(x),), math.inf, dtype=torch.float64, device=x.device)
    x_adv = x
    if search.fab_steps:
        x_adv, _ = FAB(model, norm=norm, steps=search.fab_steps, restarts=search.fab_restarts,
                       targets=search.targets, limit=limit, seed=search.seed)(x, y)
        size = perturbation_size(x_adv - x, norm)
        found = fools(model, x_adv, y) & (size <= limit)
        size = torch.where(found, size, math.inf)
        x_adv = torch.where(found.reshape(-1, *[1] * (x.dim() - 1)), x_adv, x)
    size[fools(model, x, y)] = 0.0
    return size, x_adv


def bisection_oracle(model, x, y, eps, norm, search):
    """``(x_adv, fooled)`` at per-image ``eps``: APGD-CE, APGD-T, then the same through BPDA backward passes."""
    x_adv, fooled = apgd_per_image(model, x, y, eps, norm=norm, steps=search.bisection_steps, targets=search.targets,
                                   seed=search.seed)
    for backward_as in search.straight_through:
        todo = (~fooled).nonzero().squeeze(1)
        if not len(todo):
            break
        with search.masking.straight_through(model, backward_as):  # the forward pass is the model's: "fooled" is real
            found, now = apgd_per_image(model, x[todo], y[todo], eps[todo], norm=norm, steps=search.bisection_steps,
                                        targets=search.targets, seed=search.seed)
        x_adv[todo[now]] = found[now]
        fooled[todo] = now
    return x_adv, fooled


def apgd_bisection(model, x, y, norm, search, start=None):
    """``(size, x_adv, converged)``: the smallest fooling perturbation the oracle found, that example, and whether
    it then failed at (1 - TOLERANCE) x it. ``start``: ``(sizes, examples)`` of known bounds, certified first."""
    limit = search_limit(norm, search.limit, x.shape[1:])
    clean_wrong = fools(model, x, y)
    best = torch.full((len(x),), math.inf, dtype=torch.float64, device=x.device) if start is None else start[0].clone()
    best[clean_wrong] = 0.0
    x_best = x.clone() if start is None else start[1].clone()
    lower = torch.zeros_like(best)
    probe = torch.where(torch.isfinite(best), (1 - TOLERANCE) * best, float(limit))
    converged = best == 0
    active = (~converged).nonzero().squeeze(1)
    for _ in range(BISECTION_ROUNDS + 1):
        if active.numel() == 0:
            break
        x_adv, fooled = bisection_oracle(model, x[active], y[active], probe[active].to(x.dtype), norm, search)
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


class Evidence(NamedTuple):
    """One fixed-eps attack run's examples of the evaluated images ``indices``."""

    key: str
    eps: float
    indices: torch.Tensor
    x_adv: torch.Tensor


@dataclass
class MinimalPerturbation:
    """Per image: eps*, the method and example that set it, and each method's and fixed-eps run's own size."""

    norm: str
    limit: float
    eps_star: torch.Tensor  # float64; 0 misclassified clean, inf censored
    method: list  # CLEAN, FAB_METHOD, BISECTION_METHOD, ATTACK_PREFIX + run key, or CENSORED
    fab: torch.Tensor
    bisection: torch.Tensor
    converged: torch.Tensor  # bool: the bisection certified its bound
    x_adv: torch.Tensor  # the example achieving eps* (the clean image where eps* is 0 or censored)
    attacks: dict = field(default_factory=dict)  # run key -> {"eps": float, "size": float64 tensor}

    def fold(self, model, x, y, evidence, batch_size=256):
        """Take one run's ``Evidence``, each example re-checked to fool by a forward pass (``x``, ``y``: all images)."""
        key, eps, indices, x_adv = evidence
        indices = torch.as_tensor(indices, dtype=torch.long).to(self.eps_star.device)
        x_clean = x[indices.to(x.device)]
        x_adv = x_adv.to(x.device)
        fooled = fools(model, x_adv, y[indices.to(y.device)].to(x.device), batch_size).cpu()
        size = perturbation_size(x_adv - x_clean, self.norm).cpu()
        size = torch.where(fooled & (size <= self.limit), size, math.inf)
        all_sizes = torch.full_like(self.eps_star, math.inf)
        all_sizes[indices] = size
        self.attacks[key] = {"eps": float(eps), "size": all_sizes}
        better = all_sizes < self.eps_star
        self.eps_star = torch.where(better, all_sizes, self.eps_star)
        rows = better.nonzero().squeeze(1)
        position = torch.full((len(self.eps_star),), -1, dtype=torch.long)
        position[indices] = torch.arange(len(indices))
        self.x_adv[rows] = x_adv[position[rows].to(x_adv.device)].to(self.x_adv.device, self.x_adv.dtype)
        for index in rows.tolist():  # names only; the tensors above did the work
            self.method[index] = ATTACK_PREFIX + key


def minimal_perturbations(model, x, y, norm, search, evidence=()):
    """eps* of every image of ``x`` in ``norm``: FAB, then ``evidence`` folded in, then the bisection from there."""
    limit = search_limit(norm, search.limit, x.shape[1:])
    batches = [slice(start, start + search.batch_size) for start in range(0, len(x), search.batch_size)]
    with tqdm(total=2 * len(x), desc=f"eps* {norm}", unit="img", leave=False) as bar:
        sizes, examples = [], []
        for b in batches:
            size, x_adv = fab_minimal(model, x[b], y[b], norm, limit, search)
            sizes.append(size.cpu())
            examples.append(x_adv)
            bar.update(len(x[b]))
        size = torch.cat(sizes)
        method = [CLEAN if value == 0 else CENSORED if math.isinf(value) else FAB_METHOD for value in size.tolist()]
        found = MinimalPerturbation(norm, limit, size.clone(), method, size, torch.full_like(size, math.inf),
                                    torch.zeros(len(x), dtype=torch.bool), torch.cat(examples))
        for run in evidence:
            found.fold(model, x, y, run, search.batch_size)
        for b in batches:
            start = (found.eps_star[b].to(x.device), found.x_adv[b])
            size, x_adv, converged = apgd_bisection(model, x[b], y[b], norm, search, start)
            better = (size.cpu() < found.eps_star[b]).nonzero().squeeze(1) + b.start
            found.eps_star[better] = size.cpu()[better - b.start]
            found.x_adv[better] = x_adv[better - b.start]
            for index in better.tolist():
                found.method[index] = BISECTION_METHOD
            found.bisection[b], found.converged[b] = size.cpu(), converged.cpu()
            bar.update(len(x[b]))
    return found


def robust_accuracy_curve(eps_star, limit, points=CURVE_POINTS):
    """The fraction of images with eps* above each of ``points`` eps from 0 to ``limit``."""
    grid = torch.linspace(0, limit, points, dtype=torch.float64)
    robust = (eps_star.unsqueeze(0) > grid.unsqueeze(1)).double().mean(1)
    return [{"eps": float(e), "robust_acc": float(r)} for e, r in zip(grid, robust)]


def json_value(value):
    """None for an infinite float (past the search limit)."""
    return float(value) if math.isfinite(value) else None


def json_values(values):
    return [json_value(v) for v in values.tolist()]


def median_correct(eps_star):
    """Median eps* over the correct images (eps* > 0), inf when censored, None when there are none."""
    return stats.median(eps_star[eps_star > 0].tolist())


def methods_of(result):
    return {name: result.method.count(name) for name in dict.fromkeys(result.method)}
