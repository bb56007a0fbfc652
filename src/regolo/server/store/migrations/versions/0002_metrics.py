"""metrics: time buckets, cumulative totals, flushed usage batches

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import regolo.server.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = ("metrics",)
depends_on = None

UTC_DATETIME = regolo.server.store.tables.UTCDateTime(timezone=True)
_BUCKET_SUMS = (
    ("request_count", sa.BigInteger()),
    ("error_count", sa.BigInteger()),
    ("cache_hits", sa.BigInteger()),
    ("latency_sum_ms", sa.Float()),
    ("latency_buckets", sa.JSON()),
    ("ttft_count", sa.BigInteger()),
    ("ttft_sum_ms", sa.Float()),
    ("prompt_tokens", sa.BigInteger()),
    ("completion_tokens", sa.BigInteger()),
    ("token_latency_sum_ms", sa.Float()),
    ("probe_total", sa.BigInteger()),
    ("probe_ok", sa.BigInteger()),
    ("cpu_samples", sa.BigInteger()),
    ("cpu_ratio_sum", sa.Float()),
    ("memory_samples", sa.BigInteger()),
    ("memory_bytes_sum", sa.Float()),
    ("memory_ratio_samples", sa.BigInteger()),
    ("memory_ratio_sum", sa.Float()),
)


def upgrade() -> None:
    op.create_table(
        "metric_buckets",
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("resolution_seconds", sa.Integer(), nullable=False),
        sa.Column("bucket_start", UTC_DATETIME, nullable=False),
        *(sa.Column(name, kind, nullable=False) for name, kind in _BUCKET_SUMS),
        sa.PrimaryKeyConstraint("endpoint_id", "version", "resolution_seconds", "bucket_start"),
    )
    op.create_index(
        "ix_metric_buckets_resolution_start",
        "metric_buckets",
        ["resolution_seconds", "bucket_start"],
        unique=False,
    )
    op.create_table(
        "metric_totals",
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("request_count", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency_buckets", sa.JSON(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_hits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_id", "version", "status_code"),
    )
    op.create_table(
        "metric_flushes",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("flushed_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_index(
        op.f("ix_metric_flushes_flushed_at"), "metric_flushes", ["flushed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_metric_flushes_flushed_at"), table_name="metric_flushes")
    op.drop_table("metric_flushes")
    op.drop_table("metric_totals")
    op.drop_index("ix_metric_buckets_resolution_start", table_name="metric_buckets")
    op.drop_table("metric_buckets")
