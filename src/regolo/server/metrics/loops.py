"""The metrics package's control loops: flush usage records, trim old buckets.

Registered by ``Platform`` through ``make_loops``; each step runs guarded on the
controller's thread, so a slow database never delays a request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from regolo.server.metrics.bucket_store import delete_expired
from regolo.server.metrics.probes import ProbeRecorder

if TYPE_CHECKING:
    from regolo.server.platform import Platform

RETENTION_INTERVAL_SECONDS = 300.0

Step = Callable[[], Awaitable[bool]]


def make_loops(platform: Platform) -> list[tuple[str, Step, float]]:
    """The leader's metrics loops. Usage records are flushed by every serving process
    (``Platform._flush_usage``), not here."""
    if platform.health is not None:
        platform.health.observers.append(ProbeRecorder(platform.db))

    async def trim() -> bool:
        with platform.db.write() as session:
            delete_expired(session, datetime.now(UTC))
        return False

    return [("metrics-retention", trim, RETENTION_INTERVAL_SECONDS)]
