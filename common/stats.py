"""The project's one convention for summary statistics.

- median: the middle value, or the mean of the two middle values for an even count
  (``torch.quantile(..., 0.5)``'s linear interpolation). With censored values
  (``inf`` = "not found within the search limit"), the median is itself censored
  (``inf``) when a middle value is.
- spread over seeds: the sample standard deviation (n - 1 in the denominator); None below two values.
"""
import math
import statistics


def median(values):
    """Median of a sequence of floats (``inf`` allowed); None for no values."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    low, high = ordered[middle - 1], ordered[middle]
    return math.inf if math.isinf(high) else (low + high) / 2


def mean(values):
    values = [float(v) for v in values]
    return statistics.fmean(values) if values else None


def sample_std(values):
    """Sample standard deviation (n - 1); None for fewer than two values."""
    values = [float(v) for v in values]
    return statistics.stdev(values) if len(values) > 1 else None
