"""From summed bucket stats to the numbers users read (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from regolo.server.metrics.availability import availability
from regolo.server.metrics.percentiles import percentile
from regolo.server.metrics.stats import BucketStats


@dataclass(frozen=True, kw_only=True)
class MetricsSummary:
    request_count: int
    error_count: int
    avg_latency_ms: float
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    p99_latency_ms: float | None
    error_rate: float
    availability: float
    cpu_usage: float
    cpu_samples: int
    memory_usage: float | None
    avg_memory_bytes: float | None
    tokens_per_second: float
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_ms: float | None
    cache_hit_rate: float


def summarize(stats: BucketStats) -> MetricsSummary:
    """Averages and rates of a window.

    ``cpu_usage`` is cores used / cores requested (the endpoint's ``cpu_request``, 1 core
    when unset), averaged over every replica sample in the window; 0 without samples.
    ``memory_usage`` is the same against ``memory_request`` (None when unset).
    ``tokens_per_second`` is the generation speed a caller sees: completion tokens over
    the time spent on the requests that produced them.
    """
    requests = stats.request_count
    return MetricsSummary(
        request_count=requests,
        error_count=stats.error_count,
        avg_latency_ms=stats.latency_sum_ms / requests if requests else 0.0,
        p50_latency_ms=percentile(stats.latency_buckets, 0.50),
        p95_latency_ms=percentile(stats.latency_buckets, 0.95),
        p99_latency_ms=percentile(stats.latency_buckets, 0.99),
        error_rate=stats.error_count / requests if requests else 0.0,
        availability=availability(
            stats.probe_ok, stats.probe_total, stats.error_count, stats.request_count
        ),
        cpu_usage=stats.cpu_ratio_sum / stats.cpu_samples if stats.cpu_samples else 0.0,
        cpu_samples=stats.cpu_samples,
        memory_usage=_ratio(stats.memory_ratio_sum, stats.memory_ratio_samples),
        avg_memory_bytes=_ratio(stats.memory_bytes_sum, stats.memory_samples),
        tokens_per_second=(
            stats.completion_tokens / (stats.token_latency_sum_ms / 1000.0)
            if stats.token_latency_sum_ms > 0
            else 0.0
        ),
        prompt_tokens=stats.prompt_tokens,
        completion_tokens=stats.completion_tokens,
        time_to_first_token_ms=_ratio(stats.ttft_sum_ms, stats.ttft_count),
        cache_hit_rate=stats.cache_hits / requests if requests else 0.0,
    )


def _ratio(total: float, count: int) -> float | None:
    return total / count if count else None
