"""Smallest l2 perturbations flipping sign(N(x)) (y N(x') < 0) of stacked networks (R runs, n points), three ways:
the margin set's shared direction (the original repository's), the theory's direction, l2 PGD. None within
``max_scale``: inf (censored)."""
from dataclasses import dataclass

import torch

from attacks.base import TINY
from attacks.pgd import PGD

MARGIN_SET_FACTOR = 1.1
GRID_POINTS = 256  # coarse scan for the first flip along a line, before bisection
SEGMENT_GRID_POINTS = 64  # the same along a PGD perturbation (a segment that ends flipped)
LINE_BISECTIONS = 30
# The bisection ends a rounding error past the boundary; the reported scale goes this much (relative)
# further so that a full forward pass, which rounds differently, sees the flip too.
LINE_SLACK = 1e-4
RADIUS_BISECTIONS = 8
PGD_STEPS = 20


@dataclass
class FlipMeasures:
    margin_set: torch.Tensor  # (R,) measure 1
    margin_set_size: torch.Tensor  # (R,) points in the margin set
    theory: torch.Tensor  # (R, n) measure 2
    attack: torch.Tensor  # (R, n) measure 3: l2 norm of attack_delta
    attack_delta: torch.Tensor  # (R, n, d) the flipping perturbations of measure 3 (zero where none found)


def is_flipped(net, x, y):
    """(R, n) bool: y N(x) < 0."""
    return y * net(x) < 0


def theory_directions(x, y):
    """-y_i z/||z|| with z = sum_j y_j x_j, per run: (R, n, d)."""
    return margin_set_directions(x, y, torch.ones_like(y, dtype=torch.bool))


def margin_set(net, x, y):
    """(R, n) bool: points whose margin is within MARGIN_SET_FACTOR of the run's smallest margin."""
    margins = y * net(x)
    smallest = margins.min(1, keepdim=True).values
    return margins <= smallest + (MARGIN_SET_FACTOR - 1) * smallest.abs()


def margin_set_directions(x, y, members):
    """-y_i z/||z|| with z = sum of y_j x_j over the ``members`` (R, n) of each run: (R, n, d)."""
    z = (members.unsqueeze(2) * y.unsqueeze(2) * x).sum(1)
    unit = z / z.norm(dim=1, keepdim=True)
    return -y.unsqueeze(2) * unit.unsqueeze(1)


class _Line:
    """N along the lines x + c u: pre-activations are affine in c, so an evaluation costs no (R, n, d) product."""

    def __init__(self, net, x, y, u):
        self.start = net.pre_activations(x)
        self.slope = torch.bmm(u, net.w.transpose(1, 2))
        self.v = net.v.unsqueeze(2)
        self.y = y

    def flipped(self, c):
        """c (R, n) -> (R, n) bool."""
        hidden = torch.addcmul(self.start, c.unsqueeze(2), self.slope).clamp_min_(0.0)
        return self.y * torch.bmm(hidden, self.v).squeeze(2) < 0


def first_flip_scale(condition, max_scale, grid_points=GRID_POINTS):
    """Smallest c in [0, max_scale] (a tensor, one limit per search) with condition(c) true, inf where none: the
    grid scan finds the first interval ending flipped (a larger c may flip back), then bisection."""
    upper = torch.full_like(max_scale, float("inf"))
    lower = torch.zeros_like(max_scale)
    for k in range(grid_points + 1):
        c = max_scale * (k / grid_points)
        first = torch.isinf(upper) & condition(c)
        upper = torch.where(first, c, upper)
        lower = torch.where(torch.isinf(upper), c, lower)
    found = torch.isfinite(upper)
    lower = torch.where(found, lower, 0.0)
    for _ in range(LINE_BISECTIONS):
        middle = torch.where(found, (lower + upper) / 2, 0.0)
        flipped = condition(middle) & found
        upper = torch.where(flipped, middle, upper)
        lower = torch.where(flipped | ~found, lower, middle)
    return upper * (1 + LINE_SLACK)


def theory_flip(net, x, y, max_scale):
    """Measure 2: (R, n) smallest c along -y_i z/||z||."""
    line = _Line(net, x, y, theory_directions(x, y))
    return first_flip_scale(line.flipped, torch.full_like(y, max_scale))


def margin_set_flip(net, x, y, max_scale):
    """Measure 1: (R,) smallest c that flips every point of the margin set at once, and the set sizes."""
    members = margin_set(net, x, y)
    line = _Line(net, x, y, margin_set_directions(x, y, members))

    def all_flipped(c_per_run):
        flipped = line.flipped(c_per_run.unsqueeze(1).expand_as(y))
        return (flipped | ~members).all(1)

    scale = first_flip_scale(all_flipped, torch.full_like(y[:, 0], max_scale))
    return scale, members.sum(1)


def attack_flip(net, x, y, upper, upper_delta, max_scale, seed=0, progress=None):
    """Measure 3: per point the smallest flipping perturbation PGD finds by bisecting the radius, and its norm (inf:
    none), from the known flips ``upper``/``upper_delta`` (else one at ``max_scale``); ``progress`` wraps the rounds."""
    models = [net.single(r) for r in range(net.runs)]

    def attack(radius):
        """PGD's perturbations within ``radius`` (R, n), cut back to their first flip; their norms; which flip."""
        deltas = []
        for r, model in enumerate(models):
            eps = radius[r].clamp_min(TINY)
            pgd = PGD(model, eps=eps, alpha=2.5 * eps / PGD_STEPS, steps=PGD_STEPS, random_start=False,
                      norm="l2", seed=seed + r, bounds=None)
            deltas.append(pgd(x[r], y[r])[0] - x[r])
        delta = torch.stack(deltas)
        with torch.no_grad():
            shorter = shorten_along_rays(net, x, y, delta)
            delta = torch.where(is_flipped(net, x + shorter, y).unsqueeze(2), shorter, delta)
            return delta, delta.norm(dim=2), is_flipped(net, x + delta, y)

    known = torch.isfinite(upper)
    best_norm = torch.where(known, upper, float("inf"))
    best_delta = torch.where(known.unsqueeze(2), upper_delta, 0.0)
    if not known.all():
        delta, norm, flipped = attack(torch.full_like(upper, max_scale))
        new = ~known & flipped
        best_norm = torch.where(new, norm, best_norm)
        best_delta = torch.where(new.unsqueeze(2), delta, best_delta)
    found = torch.isfinite(best_norm)
    lower = torch.zeros_like(upper)
    rounds = range(RADIUS_BISECTIONS)
    for _ in (rounds if progress is None else progress(rounds)):
        radius = torch.where(found, (lower + best_norm) / 2, 0.0)
        delta, norm, flipped = attack(radius)
        better = found & flipped & (norm < best_norm)
        best_norm = torch.where(better, norm, best_norm)
        best_delta = torch.where(better.unsqueeze(2), delta, best_delta)
        lower = torch.where(found & ~flipped, radius, lower)
    return best_norm, best_delta


def shorten_along_rays(net, x, y, delta):
    """``delta`` (R, n, d) cut back to where x + delta first crosses the decision boundary (whole where it doesn't)."""
    norm = delta.norm(dim=2)
    line = _Line(net, x, y, delta / norm.clamp_min(TINY).unsqueeze(2))
    scale = first_flip_scale(line.flipped, norm, SEGMENT_GRID_POINTS)
    scale = torch.where(scale < norm, scale, norm)
    return delta * (scale / norm.clamp_min(TINY)).unsqueeze(2)


def flip_measures(net, x, y, max_scale, seed=0, progress=None):
    """The three measures for every run and point; ``max_scale`` bounds every search."""
    with torch.no_grad():
        margin_scale, margin_size = margin_set_flip(net, x, y, max_scale)
        theory = theory_flip(net, x, y, max_scale)
        theory_delta = torch.where(torch.isfinite(theory).unsqueeze(2),
                                   theory.unsqueeze(2) * theory_directions(x, y), 0.0)
    attack, attack_delta = attack_flip(net, x, y, theory, theory_delta, max_scale, seed, progress)
    return FlipMeasures(margin_scale, margin_size, theory, attack, attack_delta)
