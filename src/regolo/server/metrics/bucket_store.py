"""Reading and adding to metric rows inside the caller's transaction.

Adds are read-modify-write under a row lock (``SELECT ... FOR UPDATE`` on PostgreSQL;
SQLite write transactions are ``BEGIN IMMEDIATE``), in key order so two writers never
deadlock. Two processes inserting the same new row make one transaction fail with an
integrity error; its batch stays pending and is added on the next try.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from regolo.server.metrics.percentiles import add_histograms, empty_histogram
from regolo.server.metrics.rollup import RESOLUTIONS_SECONDS, BucketKey, retention_cutoff
from regolo.server.metrics.stats import BucketStats, stat_names
from regolo.server.metrics.tables import MetricBucket, MetricFlush, MetricTotal

FLUSH_IDS_KEPT_FOR = 3600 * 24  # seconds; a retry comes seconds after its first try


def add_to_buckets(session: Session, deltas: Mapping[BucketKey, BucketStats]) -> None:
    for key in sorted(deltas):
        row = session.get(
            MetricBucket,
            (key.endpoint_id, key.version, key.resolution_seconds, key.bucket_start),
            with_for_update=True,
        )
        if row is None:
            row = _new_bucket(key)
            session.add(row)
        merged = stats_of(row)
        merged.add(deltas[key])
        _store(row, merged)


def add_to_totals(session: Session, sums: Mapping[tuple[str, str, int], BucketStats]) -> None:
    """Add per (endpoint, version, status) sums to the cumulative Prometheus counters."""
    for ident, stats in sorted(sums.items()):
        row = session.get(MetricTotal, ident, with_for_update=True)
        if row is None:
            row = MetricTotal(
                endpoint_id=ident[0], version=ident[1], status_code=ident[2], request_count=0,
                latency_sum_ms=0.0, latency_buckets=empty_histogram(), prompt_tokens=0,
                completion_tokens=0, cache_hits=0,
            )  # fmt: skip
            session.add(row)
        row.request_count += stats.request_count
        row.latency_sum_ms += stats.latency_sum_ms
        row.latency_buckets = add_histograms(row.latency_buckets, stats.latency_buckets)
        row.prompt_tokens += stats.prompt_tokens
        row.completion_tokens += stats.completion_tokens
        row.cache_hits += stats.cache_hits


def stats_of(row: MetricBucket) -> BucketStats:
    values = {name: getattr(row, name) for name in stat_names()}
    values["latency_buckets"] = add_histograms(empty_histogram(), row.latency_buckets or [])
    return BucketStats(**values)


def read_buckets(
    session: Session, endpoint_id: str, resolution_seconds: int, start: datetime, end: datetime
) -> list[MetricBucket]:
    return list(
        session.scalars(
            select(MetricBucket)
            .where(
                MetricBucket.endpoint_id == endpoint_id,
                MetricBucket.resolution_seconds == resolution_seconds,
                MetricBucket.bucket_start >= start,
                MetricBucket.bucket_start < end,
            )
            .order_by(MetricBucket.bucket_start)
        )
    )


def delete_expired(session: Session, now: datetime) -> int:
    """Drop buckets past their resolution's retention and old flush ids; rows deleted."""
    deleted = 0
    for resolution in RESOLUTIONS_SECONDS:
        result = session.execute(
            delete(MetricBucket).where(
                MetricBucket.resolution_seconds == resolution,
                MetricBucket.bucket_start < retention_cutoff(now, resolution),
            )
        )
        deleted += int(getattr(result, "rowcount", 0) or 0)
    result = session.execute(
        delete(MetricFlush).where(
            MetricFlush.flushed_at < now - timedelta(seconds=FLUSH_IDS_KEPT_FOR)
        )
    )
    return deleted + int(getattr(result, "rowcount", 0) or 0)


def _new_bucket(key: BucketKey) -> MetricBucket:
    row = MetricBucket(
        endpoint_id=key.endpoint_id,
        version=key.version,
        resolution_seconds=key.resolution_seconds,
        bucket_start=key.bucket_start,
    )
    _store(row, BucketStats())
    return row


def _store(row: MetricBucket, stats: BucketStats) -> None:
    for name in stat_names():
        setattr(row, name, getattr(stats, name))
