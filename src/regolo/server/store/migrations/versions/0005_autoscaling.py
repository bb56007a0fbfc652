"""autoscaling: policies, decision events, automated canary runs

Revision ID: 0005
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import regolo.server.store.tables

revision = "0005"
down_revision = "0001"
branch_labels = ("autoscaling",)
depends_on = None

_UTC = regolo.server.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "autoscaling_policies",
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["endpoint_id"], ["endpoints.id"]),
        sa.PrimaryKeyConstraint("endpoint_id"),
    )
    op.create_index("ix_autoscaling_policies_account_id", "autoscaling_policies", ["account_id"])
    op.create_table(
        "autoscaling_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("deployment_id", sa.String(length=32), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", _UTC, nullable=False),
        sa.Column("current_replicas", sa.Integer(), nullable=False),
        sa.Column("desired_replicas", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["endpoint_id"], ["endpoints.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_autoscaling_events_endpoint_at", "autoscaling_events", ["endpoint_id", "at"]
    )
    op.create_table(
        "canary_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("stable_version", sa.String(length=64), nullable=False),
        sa.Column("new_version", sa.String(length=64), nullable=False),
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step_interval_seconds", sa.Float(), nullable=False),
        sa.Column("rollback_on", sa.JSON(), nullable=False),
        sa.Column("min_requests", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("step_started_at", _UTC, nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("finished_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["endpoint_id"], ["endpoints.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_canary_runs_endpoint_id", "canary_runs", ["endpoint_id"])


def downgrade() -> None:
    op.drop_index("ix_canary_runs_endpoint_id", table_name="canary_runs")
    op.drop_table("canary_runs")
    op.drop_index("ix_autoscaling_events_endpoint_at", table_name="autoscaling_events")
    op.drop_table("autoscaling_events")
    op.drop_index("ix_autoscaling_policies_account_id", table_name="autoscaling_policies")
    op.drop_table("autoscaling_policies")
