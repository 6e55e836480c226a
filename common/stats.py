"""The project's one convention for summary statistics: the median averages the two middle values of an even count
and is censored (``inf``: not found within the search limit) where a middle value is; the spread over seeds is the
sample SD; a median's interval over images is the percentile bootstrap, where ``nan`` (unknown: a difference of two
censored values) takes whichever value widens it; a proportion's interval is Wilson's.
"""
import math
import statistics

import torch

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


def median(values):
    """Median of a sequence of floats (``inf`` allowed); None for no values."""
    values = [float(v) for v in values]
    return statistics.median(values) if values else None


def mean(values):
    values = [float(v) for v in values]
    return statistics.fmean(values) if values else None


def sample_std(values):
    """Sample standard deviation (n - 1); None for fewer than two values."""
    values = [float(v) for v in values]
    return statistics.stdev(values) if len(values) > 1 else None


def _medians(values, cumulative, toward):
    """Median of ``values`` under each resample, unknowns (nan) set to ``toward``. ``cumulative`` (R, n): how many
    draws fall at or before each sorted position, so the k-th smallest is where the count reaches k (no sort)."""
    ordered = torch.nan_to_num(values, nan=toward, posinf=math.inf, neginf=-math.inf).sort().values
    n = cumulative.shape[1]

    def kth(k):
        return ordered[(cumulative < k).sum(1)]

    if n % 2:
        return kth(n // 2 + 1)
    middle = (kth(n // 2) + kth(n // 2 + 1)) / 2  # nan where they are -inf and +inf: ``toward``
    return torch.nan_to_num(middle, nan=toward, posinf=math.inf, neginf=-math.inf)


def median_bounds(values):
    """``(low, high)``: the median of ``values`` whatever its unknowns (nan) are; ``(None, None)`` for no values."""
    values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if values.numel() == 0:
        return None, None
    once = torch.arange(1, len(values) + 1).unsqueeze(0)  # every value drawn once
    return _medians(values, once, -math.inf).item(), _medians(values, once, math.inf).item()


def bootstrap_median_interval(values, seed=0, level=CONFIDENCE, resamples=BOOTSTRAP_RESAMPLES):
    """``(low, high)``: the percentile bootstrap interval of the median over resampled images (infinite past the
    search limit); ``(None, None)`` for no values."""
    values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if values.numel() == 0:
        return None, None
    generator = torch.Generator().manual_seed(seed)
    positions = torch.randint(len(values), (resamples, len(values)), generator=generator)
    counts = torch.zeros(resamples, len(values), dtype=torch.int32)
    cumulative = counts.scatter_add_(1, positions, torch.ones_like(positions, dtype=torch.int32)).cumsum(1)
    tail = (1 - level) / 2
    low = torch.quantile(_medians(values, cumulative, -math.inf), tail, interpolation="lower").item()
    high = torch.quantile(_medians(values, cumulative, math.inf), 1 - tail, interpolation="higher").item()
    return low, high


def wilson_interval(successes, n, level=CONFIDENCE):
    """``(low, high)``: the Wilson score interval of ``successes / n`` (inside [0, 1], not empty at 0 or n); (0, 1)
    for n = 0."""
    if n == 0:
        return 0.0, 1.0
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
