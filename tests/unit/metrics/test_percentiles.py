from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from regolo.server.metrics.percentiles import (
    LATENCY_BOUNDS_MS,
    bucket_index,
    empty_histogram,
    percentile,
    share_above,
)


def histogram_of(values: list[float]) -> list[int]:
    counts = empty_histogram()
    for value in values:
        counts[bucket_index(value)] += 1
    return counts


def bucket_bounds(value: float) -> tuple[float, float]:
    index = bucket_index(value)
    lower = LATENCY_BOUNDS_MS[index - 1] if index > 0 else 0.0
    upper = LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else LATENCY_BOUNDS_MS[-1]
    return lower, upper


def true_percentile(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    rank = max(1, int(-(-quantile * len(ordered) // 1)))  # ceil, nearest-rank
    return ordered[rank - 1]


def test_bucket_edges_use_le_semantics() -> None:
    assert bucket_index(0.5) == 0
    assert bucket_index(1.0) == 0
    assert bucket_index(1.01) == 1
    assert bucket_index(10**9) == len(LATENCY_BOUNDS_MS)


def test_empty_histogram_has_no_percentile() -> None:
    assert percentile(empty_histogram(), 0.5) is None
    assert share_above(empty_histogram(), 100) == 0.0


def test_known_load_percentiles_fall_in_the_true_bucket() -> None:
    # 90 fast requests (40 ms), 10 slow (900 ms): p50 in (30, 50], p95 and p99 in (750, 1000]
    values = [40.0] * 90 + [900.0] * 10
    counts = histogram_of(values)
    p50, p95, p99 = (percentile(counts, q) for q in (0.5, 0.95, 0.99))
    assert p50 is not None and 30 < p50 <= 50
    assert p95 is not None and 750 < p95 <= 1000
    assert p99 is not None and 750 < p99 <= 1000


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.01, max_value=100_000), min_size=1, max_size=300),
    st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_percentile_is_within_the_bucket_of_the_true_value(
    values: list[float], quantile: float
) -> None:
    estimate = percentile(histogram_of(values), quantile)
    lower, upper = bucket_bounds(true_percentile(values, quantile))
    assert estimate is not None
    assert lower <= estimate <= upper


def test_overflow_bucket_reports_the_last_bound() -> None:
    assert percentile(histogram_of([500_000.0]), 0.99) == LATENCY_BOUNDS_MS[-1]


def test_share_above_on_bucket_bounds_is_exact() -> None:
    values = [40.0] * 95 + [900.0] * 5
    assert share_above(histogram_of(values), 500) == 0.05
    assert share_above(histogram_of(values), 1000) == 0.0
    rng = random.Random(1)
    spread = [rng.uniform(0, 1000) for _ in range(1000)]
    assert 0.45 < share_above(histogram_of(spread), 500) < 0.55
