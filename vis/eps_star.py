"""eps* (the per-image minimal adversarial perturbation) of merged variants: pooled medians with bootstrap
intervals, robust-accuracy curves, and the paired difference to the baseline on the same images.

A variant's seeds are pooled image by image (n = images x seeds); the baseline of the same seed is its pair.
Censored values (not fooled within the search limit) are inf, never dropped; the difference of two censored
values is unknown (nan), and a median that an unknown could move is reported as the range it has
(``common.stats.median_bounds``).
"""
import csv
import io
import math
from dataclasses import dataclass

import torch

from common import stats


def eps_axis(dataset, norm):
    """``(factor, unit)``: eps of ``norm`` drawn as ``factor * eps``; L-inf in the data set's own units (8/255 as 8
    on CIFAR-10, 0.1 as 0.1 on Fashion-MNIST), L2 on the [0, 1] pixel scale."""
    if norm == "linf":
        return dataset.scale_eps(1.0), dataset.eps_unit
    return 1.0, "pixel scale [0, 1]"


def eps_text(dataset, value, norm):
    """eps of ``norm`` as tables write it (L-inf in the data set's units); a censored value (None, inf) as such."""
    if value is None or math.isinf(value):
        return "censored"
    return dataset.format_eps(value) if norm == "linf" else f"{value:.3g}"


def _values(entry, key="eps_star"):
    """An ``EpsStarEntry``'s per-image values ``key`` (``eps_star``, ``fab_eps``, ``pgd_eps``), None (censored) as
    inf."""
    return [math.inf if value is None else value for value in getattr(entry, key)]


@dataclass(frozen=True)
class PairedDifference:
    """Median over images of (variant's eps* - the baseline's eps*), same images and seed."""

    n: int
    n_unknown: int  # images censored in both: their difference is unknown
    median_low: float  # equal to median_high unless unknowns could move the median
    median_high: float
    low: float  # 95% bootstrap interval
    high: float


@dataclass(frozen=True)
class EpsStar:
    """One variant's eps* in one norm, pooled over its seeds."""

    norm: str
    limit: float
    seeds: tuple
    n: int
    n_censored: int
    n_clean_misclassified: int
    median: float  # inf: censored
    low: float  # 95% bootstrap interval of the median (inf: past the limit)
    high: float
    fab_median: float
    pgd_median: float
    curve: tuple  # ((eps, mean robust accuracy over seeds, sample std or None), ...)
    paired: PairedDifference | None
    not_paired: str | None  # why there is no paired difference, where there is none


def pooled(entries):
    """The per-image eps* of ``((seed, entry), ...)`` one after another, as a float64 tensor (inf = censored)."""
    return torch.tensor([v for _, entry in entries for v in _values(entry)], dtype=torch.float64)


def paired_difference(entries, base_entries, images, base_images, seed):
    """``(PairedDifference, None)`` over the seeds both have on the same images, or ``(None, reason)``."""
    base = dict(base_entries)
    seeds = [s for s, _ in entries if s in base and images.get(s) is not None and images.get(s) == base_images.get(s)
             and dict(entries)[s].limit == base[s].limit]
    if not seeds:
        return None, "no seed evaluated on the same images with the same search limit as the baseline"
    own = dict(entries)
    mine = torch.tensor([v for s in seeds for v in _values(own[s])], dtype=torch.float64)
    theirs = torch.tensor([v for s in seeds for v in _values(base[s])], dtype=torch.float64)
    both = torch.isinf(mine) & torch.isinf(theirs)
    difference = torch.where(both, math.nan, mine - theirs)  # inf - finite = inf, finite - inf = -inf
    median_low, median_high = stats.median_bounds(difference)
    low, high = stats.bootstrap_median_interval(difference, seed=seed)
    return PairedDifference(len(difference), int(both.sum()), median_low, median_high, low, high), None


def eps_star(variant, norm, baseline=None, seed=0):
    """``EpsStar`` of ``variant`` (a ``vis.results.VariantSummary``) in ``norm``, paired with ``baseline``; None
    where the variant has no eps* in that norm or its seeds searched up to different limits."""
    entries = variant.minimal.get(norm)
    if not entries or len({entry.limit for _, entry in entries}) > 1:
        return None
    values = pooled(entries)
    median = stats.median(values.tolist())
    low, high = stats.bootstrap_median_interval(values, seed=seed)
    curves = torch.tensor([[point.robust_acc for point in entry.curve] for _, entry in entries])
    grid = [point.eps for point in entries[0][1].curve]
    spread = curves.std(0).tolist() if len(entries) > 1 else [None] * len(grid)
    paired, reason = (None, "this is the baseline") if variant.is_baseline else (None, "no baseline result")
    if baseline is not None and not variant.is_baseline and baseline.minimal.get(norm):
        paired, reason = paired_difference(entries, baseline.minimal[norm], variant.images_sha256,
                                           baseline.images_sha256, seed)
    return EpsStar(
        norm=norm, limit=entries[0][1].limit, seeds=tuple(s for s, _ in entries), n=len(values),
        n_censored=int(torch.isinf(values).sum()),
        n_clean_misclassified=sum(entry.n_clean_misclassified for _, entry in entries),
        median=median, low=low, high=high,
        fab_median=stats.median([v for _, entry in entries for v in _values(entry, "fab_eps")]),
        pgd_median=stats.median([v for _, entry in entries for v in _values(entry, "pgd_eps")]),
        curve=tuple(zip(grid, curves.mean(0).tolist(), spread)), paired=paired, not_paired=None if paired else reason)


CSV_COLUMNS = ("variant", "layer", "strength", "seeds", "norm", "limit", "n", "n_clean_misclassified", "n_censored",
               "median", "low", "high", "fab_median", "pgd_median", "paired_n", "paired_n_unknown",
               "paired_median_low", "paired_median_high", "paired_low", "paired_high", "not_paired")


def csv_text(results):
    """``eps_star.csv``: one row per merged variant and norm. Empty cells are censored values or bounds past the
    limit (inf; -inf for a lower bound of a difference), or not applicable."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for variant in results.variants:
        for norm, summary in variant.eps_star.items():
            paired = summary.paired
            numbers = [summary.median, summary.low, summary.high, summary.fab_median, summary.pgd_median]
            paired_numbers = ([paired.n, paired.n_unknown, paired.median_low, paired.median_high, paired.low,
                               paired.high] if paired else [None] * 6)
            writer.writerow([_cell(value) for value in [
                variant.label, variant.layer, variant.strength, " ".join(map(str, summary.seeds)), norm,
                summary.limit, summary.n, summary.n_clean_misclassified, summary.n_censored, *numbers,
                *paired_numbers, summary.not_paired]])
    return buffer.getvalue()


def _cell(value):
    return "" if value is None or (isinstance(value, float) and math.isinf(value)) else value
