"""The billing migration creates exactly what the billing tables declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from regolo.server.store.migrate import upgrade
from regolo.server.store.schema import load_all_tables


def test_no_drift(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            diff = compare_metadata(context, load_all_tables().metadata)
    finally:
        engine.dispose()
    billing = [d for d in diff if "billing_" in repr(d)]
    assert billing == []
