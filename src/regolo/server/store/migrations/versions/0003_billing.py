"""billing: price-book history, hourly usage, credit ledger, pauses, invoices

Money columns are BIGINT micro-units (see regolo.server.billing.money).

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import regolo.server.store.tables

revision = "0003"
down_revision = "0001"
branch_labels = ("billing",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_meter_cursors",
        sa.Column("replica_id", sa.String(length=32), nullable=False),
        sa.Column("hours_charged", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("replica_id"),
    )
    op.create_index(
        op.f("ix_billing_meter_cursors_closed"), "billing_meter_cursors", ["closed"], unique=False
    )
    op.create_table(
        "billing_price_books",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column(
            "effective_from", regolo.server.store.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("prices", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_billing_price_books_effective_from"),
        "billing_price_books",
        ["effective_from"],
        unique=False,
    )
    op.create_table(
        "billing_accounts",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column(
            "paused_at", regolo.server.store.tables.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("pause_reason", sa.Text(), nullable=True),
        sa.Column("low_balance", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", regolo.server.store.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "billing_invoices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column(
            "issued_at", regolo.server.store.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "month"),
    )
    op.create_index(
        op.f("ix_billing_invoices_account_id"), "billing_invoices", ["account_id"], unique=False
    )
    op.create_table(
        "billing_ledger",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("at", regolo.server.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by_key_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "key"),
    )
    op.create_index(
        op.f("ix_billing_ledger_account_id"), "billing_ledger", ["account_id"], unique=False
    )
    op.create_index(op.f("ix_billing_ledger_month"), "billing_ledger", ["month"], unique=False)
    op.create_table(
        "billing_paused_deployments",
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("replicas_before", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("deployment_id"),
    )
    op.create_index(
        op.f("ix_billing_paused_deployments_account_id"),
        "billing_paused_deployments",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "billing_usage",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_name", sa.String(length=100), nullable=False),
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("replica_id", sa.String(length=32), nullable=False),
        sa.Column("hour_index", sa.Integer(), nullable=False),
        sa.Column(
            "hour_start", regolo.server.store.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("instance_type", sa.String(length=64), nullable=False),
        sa.Column("price_book_version", sa.String(length=64), nullable=False),
        sa.Column("price_per_hour", sa.BigInteger(), nullable=False),
        sa.Column("billed_month", sa.String(length=7), nullable=False),
        sa.Column(
            "charged_at", regolo.server.store.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("replica_id", "hour_index"),
    )
    op.create_index(
        op.f("ix_billing_usage_account_id"), "billing_usage", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_billing_usage_billed_month"), "billing_usage", ["billed_month"], unique=False
    )
    op.create_index(
        op.f("ix_billing_usage_endpoint_id"), "billing_usage", ["endpoint_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_billing_usage_endpoint_id"), table_name="billing_usage")
    op.drop_index(op.f("ix_billing_usage_billed_month"), table_name="billing_usage")
    op.drop_index(op.f("ix_billing_usage_account_id"), table_name="billing_usage")
    op.drop_table("billing_usage")
    op.drop_index(
        op.f("ix_billing_paused_deployments_account_id"), table_name="billing_paused_deployments"
    )
    op.drop_table("billing_paused_deployments")
    op.drop_index(op.f("ix_billing_ledger_month"), table_name="billing_ledger")
    op.drop_index(op.f("ix_billing_ledger_account_id"), table_name="billing_ledger")
    op.drop_table("billing_ledger")
    op.drop_index(op.f("ix_billing_invoices_account_id"), table_name="billing_invoices")
    op.drop_table("billing_invoices")
    op.drop_table("billing_accounts")
    op.drop_index(op.f("ix_billing_price_books_effective_from"), table_name="billing_price_books")
    op.drop_table("billing_price_books")
    op.drop_index(op.f("ix_billing_meter_cursors_closed"), table_name="billing_meter_cursors")
    op.drop_table("billing_meter_cursors")
