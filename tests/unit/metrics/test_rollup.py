from __future__ import annotations

from datetime import UTC, datetime, timedelta

from regolo.server.metrics.rollup import (
    RETENTION,
    TIME_RANGES,
    aggregate_usage,
    bucket_start,
    keys_for,
    retention_cutoff,
    series_starts,
    window,
)
from regolo.server.metrics.stats import BucketStats, is_error
from regolo.server.specs import UsageRecord

T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def usage(
    at: datetime, status: int = 200, latency_ms: float = 50.0, **extra: object
) -> UsageRecord:
    return UsageRecord(
        at=at.timestamp(), account_id="acc", key_id="key", endpoint_id="ep", deployment_id="dep",
        version=str(extra.pop("version", "1.0")), replica_id="rep", status_code=status,
        latency_ms=latency_ms, **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def test_bucket_start_aligns_to_the_resolution() -> None:
    at = T0 + timedelta(minutes=7, seconds=43, microseconds=5)
    assert bucket_start(at, 10) == T0 + timedelta(minutes=7, seconds=40)
    assert bucket_start(at, 60) == T0 + timedelta(minutes=7)
    assert bucket_start(at, 3600) == T0


def test_every_record_lands_in_each_resolution_once() -> None:
    keys = keys_for("ep", "1.0", T0 + timedelta(seconds=75))
    assert [k.resolution_seconds for k in keys] == [10, 60, 3600]
    assert keys_for("ep", None, T0)[0].version == ""


def test_coarse_buckets_are_exact_sums_of_fine_ones() -> None:
    records = [
        usage(T0 + timedelta(seconds=s), 500 if s % 7 == 0 else 200, float(s))
        for s in range(0, 3600, 3)
    ]
    deltas = aggregate_usage(records)
    for coarse in (60, 3600):
        for key, stats in deltas.items():
            if key.resolution_seconds != coarse:
                continue
            fine = BucketStats()
            for other, part in deltas.items():
                if (
                    other.resolution_seconds == 10
                    and bucket_start(other.bucket_start, coarse) == key.bucket_start
                ):
                    fine.add(part)
            assert fine == stats
    hour = [s for k, s in deltas.items() if k.resolution_seconds == 3600]
    assert len(hour) == 1 and hour[0].request_count == 1200
    assert hour[0].error_count == sum(1 for s in range(0, 3600, 3) if s % 7 == 0)


def test_errors_are_5xx_timeouts_and_cut_streams() -> None:
    assert is_error(500, True) and is_error(504, True) and is_error(503, True)
    assert is_error(200, False)  # the replica died mid-stream
    assert not is_error(499, False)  # the client went away
    assert not is_error(429, True) and not is_error(400, True) and not is_error(200, True)


def test_retention_keeps_each_resolution_for_its_limit() -> None:
    now = T0 + timedelta(days=40)
    for resolution, kept in RETENTION.items():
        cutoff = retention_cutoff(now, resolution)
        assert now - kept - timedelta(seconds=resolution) < cutoff <= now - kept
    # every range reads a resolution that is still kept for the whole range
    for time_range in TIME_RANGES.values():
        assert RETENTION[time_range.resolution_seconds] >= timedelta(seconds=time_range.seconds)


def test_window_and_series_cover_the_range() -> None:
    now = T0 + timedelta(seconds=95)
    start, end = window(now, TIME_RANGES["15m"])
    assert end == T0 + timedelta(seconds=100)
    assert end - start == timedelta(minutes=15)
    points = series_starts(start, end, TIME_RANGES["15m"].step_seconds)
    assert len(points) in (30, 31)
    assert points[0] <= start and points[-1] < end


def test_each_sum_counts_every_record_of_its_key_whatever_the_order() -> None:
    statuses = (200, 200, 499, 500, 429, 0, 200, 504)
    records = [
        usage(
            T0 + timedelta(seconds=i % 25), statuses[i % len(statuses)], float(i % 97),
            version=("1.0", "1.1")[i % 2], complete=i % 5 != 0, cache_hit=i % 3 == 0,
            time_to_first_token_ms=float(i) if i % 4 == 0 else None,
            prompt_tokens=i % 11, completion_tokens=i % 6,
        )
        for i in range(400)
    ]  # fmt: skip
    deltas = aggregate_usage(records)
    for key, stats in deltas.items():
        if key.resolution_seconds != 10:
            continue
        mine = [
            r
            for r in records
            if r.version == key.version
            and bucket_start(datetime.fromtimestamp(r.at, UTC), 10) == key.bucket_start
        ]
        assert stats.request_count == len(mine)
        assert stats.error_count == sum(is_error(r.status_code, r.complete) for r in mine)
        assert stats.cache_hits == sum(r.cache_hit for r in mine)
        assert stats.latency_sum_ms == sum(r.latency_ms for r in mine)
        assert sum(stats.latency_buckets) == len(mine)
        ttfts = [r.time_to_first_token_ms for r in mine if r.time_to_first_token_ms is not None]
        assert (stats.ttft_count, stats.ttft_sum_ms) == (len(ttfts), sum(ttfts))
        assert stats.prompt_tokens == sum(r.prompt_tokens for r in mine)
        assert stats.completion_tokens == sum(r.completion_tokens for r in mine)
        assert stats.token_latency_sum_ms == sum(r.latency_ms for r in mine if r.completion_tokens)
