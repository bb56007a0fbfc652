"""rollouts: the configuration fingerprint each replica was started with

Revision ID: 0006
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = ("rollouts",)
depends_on = None


def upgrade() -> None:
    # Replicas started before this migration keep NULL: they are not rolled.
    op.add_column("replicas", sa.Column("spec_fingerprint", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("spec_fingerprint")
