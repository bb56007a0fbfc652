from __future__ import annotations

import pytest

from regolo.server.metrics.availability import availability
from regolo.server.metrics.health_status import endpoint_health_status
from regolo.server.metrics.percentiles import bucket_index
from regolo.server.metrics.slo import SloTargets, evaluate
from regolo.server.metrics.stats import BucketStats
from regolo.server.metrics.summary import summarize


def stats_with(
    latencies: list[float], errors: int, probe_ok: int = 0, probe_total: int = 0
) -> BucketStats:
    stats = BucketStats(
        request_count=len(latencies),
        error_count=errors,
        latency_sum_ms=sum(latencies),
        probe_ok=probe_ok,
        probe_total=probe_total,
    )
    for value in latencies:
        stats.latency_buckets[bucket_index(value)] += 1
    return stats


def test_availability_counts_probe_ticks_and_requests() -> None:
    assert availability(0, 0, 0, 0) == 1.0
    # 100 ticks with 10 down, 50 requests with 5 errors: (90 + 45) / 150
    assert availability(90, 100, 5, 50) == pytest.approx(135 / 150)


def test_summary_of_a_known_window() -> None:
    stats = stats_with([100.0] * 8 + [1000.0] * 2, errors=2, probe_ok=9, probe_total=10)
    stats.completion_tokens = 50
    stats.token_latency_sum_ms = 2500.0
    stats.cpu_samples, stats.cpu_ratio_sum = 4, 1.0
    summary = summarize(stats)
    assert summary.request_count == 10
    assert summary.avg_latency_ms == pytest.approx(280.0)
    assert summary.error_rate == pytest.approx(0.2)
    assert summary.availability == pytest.approx((9 + 8) / 20)
    assert summary.tokens_per_second == pytest.approx(20.0)
    assert summary.cpu_usage == pytest.approx(0.25)
    assert summary.memory_usage is None and summary.time_to_first_token_ms is None


def test_empty_window_reads_as_nothing_failed() -> None:
    summary = summarize(BucketStats())
    assert summary.request_count == 0 and summary.error_rate == 0.0
    assert summary.availability == 1.0 and summary.cpu_usage == 0.0
    assert summary.p95_latency_ms is None


def test_slo_met_and_breached_with_budget() -> None:
    stats = stats_with([50.0] * 990 + [5000.0] * 10, errors=10, probe_ok=1000, probe_total=1000)
    targets = SloTargets(p95_latency_ms=200, availability=99.0, error_rate=0.02)
    found = {o.name: o for o in evaluate(targets, stats)}
    assert found["availability"].target == 0.99 and found["availability"].met
    # 10 errors in 2000 events: 0.5 % of a 1 % budget spent
    assert found["availability"].error_budget_remaining == pytest.approx(0.5)
    assert found["error_rate"].met
    assert found["error_rate"].error_budget_remaining == pytest.approx(0.5)
    assert found["p95_latency_ms"].met
    assert found["p95_latency_ms"].error_budget_remaining == pytest.approx(1 - 0.01 / 0.05)
    breached = {o.name: o for o in evaluate(SloTargets(error_rate=0.005), stats)}
    assert not breached["error_rate"].met
    assert breached["error_rate"].error_budget_remaining == pytest.approx(-1.0)


def test_health_status_words() -> None:
    assert endpoint_health_status(desired=2, ready=2, endpoint_status="ready") == "healthy"
    assert endpoint_health_status(desired=2, ready=1, endpoint_status="ready") == "degraded"
    assert endpoint_health_status(desired=2, ready=0, endpoint_status="ready") == "unhealthy"
    assert endpoint_health_status(desired=1, ready=0, endpoint_status="deploying") == "starting"
    assert endpoint_health_status(desired=0, ready=0, endpoint_status="ready") == "scaled_to_zero"
    assert endpoint_health_status(desired=1, ready=0, endpoint_status="failed") == "failed"
