"""Controller leadership through the database: one lease row, renewed while alive.

Several ``regolo serve --role controller`` processes may share one database; only the
holder of the lease runs the control loops. If it dies, its lease expires and another
takes over within ``ttl_seconds``.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from regolo.server.store.database import Database
from regolo.server.store.tables import Lease

log = logging.getLogger("regolo.leader")
CONTROLLER_LEASE = "controller"


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLease:
    def __init__(
        self,
        db: Database,
        *,
        ttl_seconds: float = 10.0,
        holder: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_elected: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_seconds)
        self.holder = holder or holder_id()
        self.clock = clock
        self.on_elected = on_elected
        self.is_leader = False

    def try_acquire(self) -> bool:
        """Take or renew the lease; returns whether this process now leads."""
        now = self.clock()
        with self.db.write() as session:
            lease = session.get(Lease, CONTROLLER_LEASE, with_for_update=True)
            if lease is None:
                session.add(
                    Lease(name=CONTROLLER_LEASE, holder=self.holder, expires_at=now + self.ttl)
                )
                return True
            if lease.holder == self.holder or lease.expires_at <= now:
                lease.holder = self.holder
                lease.expires_at = now + self.ttl
                return True
            return False

    def release(self) -> None:
        if not self.is_leader:
            return
        with self.db.write() as session:
            lease = session.get(Lease, CONTROLLER_LEASE)
            if lease is not None and lease.holder == self.holder:
                session.delete(lease)
        self.is_leader = False

    async def step(self) -> bool:
        """The leadership loop's tick."""
        leading = self.try_acquire()
        if leading and not self.is_leader:
            log.info("this process (%s) now leads the control loops", self.holder)
            self.is_leader = True
            if self.on_elected is not None:
                await self.on_elected()
            return True
        if not leading and self.is_leader:
            log.warning("lost controller leadership to another process")
        self.is_leader = leading
        return False

    def guard(self, step: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
        """Run ``step`` only while leading."""

        async def guarded() -> bool:
            if not self.is_leader:
                return False
            return await step()

        return guarded
