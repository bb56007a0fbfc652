"""batch: files, jobs and lines

Revision ID: 0004
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import regolo.server.store.tables

revision = "0004"
down_revision = "0001"
branch_labels = ("batch",)
depends_on = None

_UTC = regolo.server.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batch_files",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_name", sa.String(length=63), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_batch_files_account_id", "batch_files", ["account_id"])
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("endpoint_name", sa.String(length=63), nullable=True),
        sa.Column("url", sa.String(length=64), nullable=False),
        sa.Column("completion_window", sa.String(length=16), nullable=False),
        sa.Column("input_file_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("output_file_id", sa.String(length=64), nullable=True),
        sa.Column("error_file_id", sa.String(length=64), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("expires_at", _UTC, nullable=False),
        sa.Column("in_progress_at", _UTC, nullable=True),
        sa.Column("finalizing_at", _UTC, nullable=True),
        sa.Column("completed_at", _UTC, nullable=True),
        sa.Column("failed_at", _UTC, nullable=True),
        sa.Column("expired_at", _UTC, nullable=True),
        sa.Column("cancelling_at", _UTC, nullable=True),
        sa.Column("cancelled_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_batch_jobs_account_id", "batch_jobs", ["account_id"])
    op.create_index("ix_batch_jobs_status", "batch_jobs", ["status"])
    op.create_table(
        "batch_lines",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("custom_id", sa.String(length=128), nullable=False),
        sa.Column("endpoint_name", sa.String(length=63), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("lease_until", _UTC, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("finished_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["batch_jobs.id"]),
        sa.PrimaryKeyConstraint("batch_id", "line_no"),
        sa.UniqueConstraint("batch_id", "custom_id"),
    )
    op.create_index("ix_batch_lines_claim", "batch_lines", ["batch_id", "state", "line_no"])


def downgrade() -> None:
    op.drop_index("ix_batch_lines_claim", table_name="batch_lines")
    op.drop_table("batch_lines")
    op.drop_index("ix_batch_jobs_status", table_name="batch_jobs")
    op.drop_index("ix_batch_jobs_account_id", table_name="batch_jobs")
    op.drop_table("batch_jobs")
    op.drop_index("ix_batch_files_account_id", table_name="batch_files")
    op.drop_table("batch_files")
