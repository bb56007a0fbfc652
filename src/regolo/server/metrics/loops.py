"""The metrics package's control loops: flush usage records, trim old buckets.

Registered by ``Platform`` through ``make_loops``; each step runs guarded on the
controller's thread, so a slow database never delays a request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from regolo.server.metrics.bucket_store import delete_expired
from regolo.server.metrics.flusher import UsageFlusher
from regolo.server.metrics.probes import ProbeRecorder

if TYPE_CHECKING:
    from regolo.server.platform import Platform

# Seconds between flushes: longer batches spread the store's fixed cost per transaction
# over more records; the API shows requests this much later.
FLUSH_INTERVAL_SECONDS = 3.0
RETENTION_INTERVAL_SECONDS = 300.0

Step = Callable[[], Awaitable[bool]]


def make_loops(platform: Platform) -> list[tuple[str, Step, float]]:
    flusher = UsageFlusher(platform.db, platform.usage)
    if platform.health is not None:
        platform.health.observers.append(ProbeRecorder(platform.db))

    async def flush() -> bool:
        flusher.flush()
        return False  # metrics never change routing

    async def trim() -> bool:
        with platform.db.write() as session:
            delete_expired(session, datetime.now(UTC))
        return False

    return [
        ("metrics-flush", flush, FLUSH_INTERVAL_SECONDS),
        ("metrics-retention", trim, RETENTION_INTERVAL_SECONDS),
    ]
