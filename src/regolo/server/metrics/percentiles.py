"""Latency histograms: fixed bucket bounds, and percentiles read back from bucket counts.

Percentiles are interpolated linearly inside the bucket that holds the rank, as
Prometheus' ``histogram_quantile`` does, so a reported value is always inside the
bucket that holds the true one ("within bucket precision").
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

# Upper bounds in milliseconds; a last, implicit bucket holds everything above.
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 60000, 120000,
)  # fmt: skip
BUCKET_COUNT = len(LATENCY_BOUNDS_MS) + 1


def empty_histogram() -> list[int]:
    return [0] * BUCKET_COUNT


def bucket_index(latency_ms: float, bounds: Sequence[float] = LATENCY_BOUNDS_MS) -> int:
    """The bucket of ``latency_ms``: the first whose upper bound is >= it (``le`` semantics)."""
    return bisect.bisect_left(bounds, latency_ms)


def add_histograms(left: Sequence[int], right: Sequence[int]) -> list[int]:
    width = max(len(left), len(right))
    return [
        (left[i] if i < len(left) else 0) + (right[i] if i < len(right) else 0)
        for i in range(width)
    ]


def percentile(
    counts: Sequence[int], quantile: float, bounds: Sequence[float] = LATENCY_BOUNDS_MS
) -> float | None:
    """The ``quantile`` (0..1) of the values counted in ``counts``; None if there are none.

    A rank in the overflow bucket reports the last finite bound (it is "at least" that).
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = quantile * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index >= len(bounds):
                return float(bounds[-1])
            lower = float(bounds[index - 1]) if index > 0 else 0.0
            upper = float(bounds[index])
            return lower + (upper - lower) * max(0.0, rank - seen) / count
        seen += count
    return float(bounds[-1])


def share_above(
    counts: Sequence[int], threshold_ms: float, bounds: Sequence[float] = LATENCY_BOUNDS_MS
) -> float:
    """Share of the counted values above ``threshold_ms`` (bucket precision, interpolated)."""
    total = sum(counts)
    if total == 0:
        return 0.0
    below = 0.0
    for index, count in enumerate(counts):
        lower = float(bounds[index - 1]) if index > 0 else 0.0
        upper = float(bounds[index]) if index < len(bounds) else float("inf")
        if upper <= threshold_ms:
            below += count
        elif lower < threshold_ms < upper and upper != float("inf"):
            below += count * (threshold_ms - lower) / (upper - lower)
    return max(0.0, (total - below) / total)
