"""The drift statistics: PSI on fixed bins, the two-sample Kolmogorov-Smirnov test (scipy), and a tabular CUSUM on
the daily flag rate. Pure functions of numbers, tested against hand-computed values."""

from __future__ import annotations

import math
from collections.abc import Sequence

# Fixed bins of the calibrated probability: ten of width 0.1 (the last one closed at 1.0). Fixed, not quantiles of
# the baseline, so that every day's histogram is comparable with every other's and with another model's.
BIN_EDGES = tuple(round(i / 10, 1) for i in range(11))
# An empty bin would make PSI infinite: its share is floored at this value (the usual convention).
PSI_FLOOR = 1e-4
# PSI conventions: below 0.1 no meaningful shift, 0.1-0.25 a moderate one, above 0.25 a major one.
PSI_WATCH = 0.1
PSI_ACT = 0.25
# CUSUM on the standardised daily flag rate: reference value k (half a standard deviation) and decision limit h.
CUSUM_K = 0.5
CUSUM_H = 5.0


def histogram(scores: Sequence[float]) -> list[int]:
    """Counts of scores in the ten fixed bins [0, 0.1), ..., [0.9, 1.0]."""
    counts = [0] * (len(BIN_EDGES) - 1)
    for score in scores:
        index = min(int(max(0.0, min(1.0, float(score))) * 10 + 1e-9), len(counts) - 1)
        counts[index] += 1
    return counts


def psi(expected: Sequence[int], actual: Sequence[int]) -> float | None:
    """Population stability index of `actual` against `expected` (bin counts): sum (a - e) * ln(a / e) over bins of
    the shares, each share floored at PSI_FLOOR. None when either side is empty."""
    total_e, total_a = sum(expected), sum(actual)
    if not total_e or not total_a:
        return None
    value = 0.0
    for e_count, a_count in zip(expected, actual, strict=True):
        e = max(e_count / total_e, PSI_FLOOR)
        a = max(a_count / total_a, PSI_FLOOR)
        value += (a - e) * math.log(a / e)
    return value


def ks_test(baseline: Sequence[float], sample: Sequence[float]) -> tuple[float, float] | None:
    """Two-sample KS test (two-sided): (statistic D, p-value), by scipy.stats.ks_2samp (exact for small samples,
    asymptotic for large ones). None when either sample is empty."""
    if not baseline or not sample:
        return None
    from scipy.stats import ks_2samp

    result = ks_2samp(list(baseline), list(sample))
    return float(result.statistic), float(result.pvalue)


def cusum(rates: Sequence[tuple[float | None, int]], *, p0: float | None) -> list[tuple[float | None, float | None]]:
    """Tabular CUSUM of daily flag rates (rate, studies) against the baseline rate p0: for each day (upper, lower)
    sums of z - k and -z - k floored at 0, z the day's rate standardised by its binomial standard error. A day
    without studies carries the sums over; None throughout without a usable baseline rate."""
    if p0 is None or p0 <= 0 or p0 >= 1:
        return [(None, None)] * len(rates)
    upper = lower = 0.0
    out = []
    for rate, n in rates:
        if rate is not None and n:
            z = (rate - p0) / math.sqrt(p0 * (1 - p0) / n)
            upper = max(0.0, upper + z - CUSUM_K)
            lower = max(0.0, lower - z - CUSUM_K)
        out.append((upper, lower))
    return out
