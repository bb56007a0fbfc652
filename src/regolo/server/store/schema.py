"""Every table of the platform, for Alembic and the schema test.

Feature packages keep their tables in their own ``tables`` module (on the shared
``Base``); importing this module registers them all on ``Base.metadata``.
"""

from __future__ import annotations

import importlib

from regolo.server.store.tables import Base

FEATURE_TABLE_MODULES = (
    "regolo.server.metrics.tables",
    "regolo.server.billing.tables",
    "regolo.server.batch.tables",
    "regolo.server.autoscaling.tables",
)


def load_all_tables() -> type[Base]:
    for module_name in FEATURE_TABLE_MODULES:
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not exc.name or not module_name.startswith(exc.name):
                raise
    return Base
