"""Small statistics for benchmark figures: medians, percentiles, ratios.

Usage:
    p99 = percentile(latencies_us, 99)
    ratio_of(cold_rps, health_rps)        # None when either side is missing
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

__all__ = ["median_of", "percentile", "ratio_of"]


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def median_of(values: Iterable[float | None]) -> float | None:
    """The median of the values that were measured (None and NaN are skipped)."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(present) if present else None


def ratio_of(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0 or math.isnan(numerator):
        return None
    return numerator / denominator
