"""The project's one convention for summary statistics: the median averages the two middle values of an even count
and is censored (``inf``: not found within the search limit) where a middle value is; the spread over seeds is the
sample SD; a median's interval over images is the percentile bootstrap; a proportion's interval is Wilson's.
"""
import statistics

import torch
from statsmodels.stats.proportion import proportion_confint

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


def bootstrap_median_interval(values, seed=0, level=CONFIDENCE, resamples=BOOTSTRAP_RESAMPLES):
    """``(low, high)``: the percentile bootstrap interval of the median over resampled images (infinite past the
    search limit); ``(None, None)`` for no values."""
    values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    n = values.numel()
    if n == 0:
        return None, None
    positions = torch.randint(n, (resamples, n), generator=torch.Generator().manual_seed(seed))
    # per resample, how many draws fall at or before each sorted position: its k-th smallest value sits at the first
    # position whose count reaches k (no sort per resample)
    counts = torch.zeros(resamples, n, dtype=torch.int32)
    cumulative = counts.scatter_add_(1, positions, torch.ones_like(positions, dtype=torch.int32)).cumsum(1)
    ordered = values.sort().values

    def kth(k):
        return ordered[(cumulative < k).sum(1)]

    medians = kth(n // 2 + 1) if n % 2 else (kth(n // 2) + kth(n // 2 + 1)) / 2
    tail = (1 - level) / 2
    return (torch.quantile(medians, tail, interpolation="lower").item(),
            torch.quantile(medians, 1 - tail, interpolation="higher").item())


def wilson_interval(successes, n, level=CONFIDENCE):
    """``(low, high)``: the Wilson score interval of ``successes / n`` (inside [0, 1], not empty at 0 or n); (0, 1)
    for n = 0."""
    if n == 0:
        return 0.0, 1.0
    low, high = proportion_confint(successes, n, alpha=1 - level, method="wilson")
    return (0.0 if successes == 0 else float(low)), (1.0 if successes == n else float(high))  # exact at the ends
