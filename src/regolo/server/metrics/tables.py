"""Metric tables: time buckets, cumulative totals for Prometheus, and flushed batches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from regolo.server.store.tables import Base, utcnow


class MetricBucket(Base):
    """Sums over one endpoint version and one 10 s, 1 min or 1 h bucket."""

    __tablename__ = "metric_buckets"
    __table_args__ = (
        Index("ix_metric_buckets_resolution_start", "resolution_seconds", "bucket_start"),
    )
    endpoint_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    resolution_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    request_count: Mapped[int] = mapped_column(BigInteger, default=0)
    error_count: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_hits: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    latency_buckets: Mapped[list[int]] = mapped_column(JSON)
    ttft_count: Mapped[int] = mapped_column(BigInteger, default=0)
    ttft_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    token_latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    probe_total: Mapped[int] = mapped_column(BigInteger, default=0)
    probe_ok: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_samples: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_ratio_sum: Mapped[float] = mapped_column(Float, default=0.0)
    memory_samples: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_bytes_sum: Mapped[float] = mapped_column(Float, default=0.0)
    memory_ratio_samples: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_ratio_sum: Mapped[float] = mapped_column(Float, default=0.0)


class MetricTotal(Base):
    """Cumulative request counters since the endpoint existed (never rolled up or trimmed),
    so the Prometheus counters only ever go up."""

    __tablename__ = "metric_totals"
    endpoint_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    status_code: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_count: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    latency_buckets: Mapped[list[int]] = mapped_column(JSON)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_hits: Mapped[int] = mapped_column(BigInteger, default=0)


class MetricFlush(Base):
    """One flushed batch of usage records: a retried batch finds its id and is skipped (R18)."""

    __tablename__ = "metric_flushes"
    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_count: Mapped[int] = mapped_column(Integer)
    flushed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
