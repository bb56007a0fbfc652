"""Alembic environment: runs against the connection handed over by ``store.migrate``."""

from __future__ import annotations

from alembic import context

from regolo.server.store.schema import load_all_tables

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=load_all_tables().metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
