"""How much of a replica the batch runner may use: only what online traffic leaves free.

Online requests have strict priority. While a replica serves any online request (the
gateway's ``picker.outstanding``) batch work starts nothing there, and the runner
preempts what it has in flight on it. Batch work comes back once the replica has had
no online request for ``resume_after_seconds``, so that a client sending requests back
to back does not find batch work in its way at every request. A replica without online
traffic is the batch runner's to fill: every slot (less ``reserved_slots`` where the
runner cannot see online requests: a gateway in another process), and ``queue_ahead``
requests more that wait in the replica's own queue, so a slot that finishes a batch
line starts the next at once instead of idling while the runner stores the result and
sends another (measured: about a tenth of the replica's throughput). Lines are queued
ahead only on a replica that has had no online request for ``queue_ahead_after_seconds``:
an online request must wait in that queue until the replica notices the preempted
lines are gone, so where online traffic comes and goes the queue stays empty. Where one
slot is left to others, nothing is queued ahead either.

Everything here runs on the runner's event loop; the gateway's thread reaches it only
through ``online_changed`` scheduled onto that loop, and ``saw_online``, one dict write.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

from regolo.server.gateway.routing_table import RouteDeployment, RouteReplica

RESUME_AFTER_SECONDS = 0.5
QUEUE_AHEAD_AFTER_SECONDS = 10.0


def spare_slots(
    slots_per_replica: int,
    online: int,
    batch_in_flight: int,
    *,
    online_recently: bool = False,
    reserved: int = 0,
    queue_ahead: int = 0,
) -> int:
    """Batch requests the runner may still send to one replica (never negative)."""
    if online > 0 or online_recently:
        return 0
    usable = max(1, slots_per_replica - reserved) + (0 if reserved else queue_ahead)
    return max(0, usable - batch_in_flight)


class ReplicaSlots:
    """The runner's in-flight count per replica, and the choice of the freest replica."""

    def __init__(
        self,
        slots_per_replica: int,
        online: Callable[[str], int],
        *,
        resume_after_seconds: float = RESUME_AFTER_SECONDS,
        reserved_slots: int = 0,
        queue_ahead: int = 0,
        queue_ahead_after_seconds: float = QUEUE_AHEAD_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots_per_replica = slots_per_replica
        self.reserved_slots = reserved_slots
        self.queue_ahead = queue_ahead
        self.queue_ahead_after_seconds = queue_ahead_after_seconds
        self.online = online
        self.resume_after_seconds = resume_after_seconds
        self.clock = clock
        self.in_flight: dict[str, int] = {}
        self._online_at: dict[str, float] = {}  # replica -> when it last served online traffic
        self._held_back: set[str] = set()  # replicas where batch work leaves one slot free
        self._changed = asyncio.Event()

    def acquire(self, deployment: RouteDeployment) -> RouteReplica | None:
        best: RouteReplica | None = None
        best_spare = 0
        now = self.clock()
        for replica in deployment.replicas:
            online = self.online(replica.replica_id)
            if online > 0:
                self._online_at[replica.replica_id] = now
            quiet_for = now - self._online_at.get(replica.replica_id, -math.inf)
            spare = spare_slots(
                self.slots_per_replica,
                online,
                self.in_flight.get(replica.replica_id, 0),
                online_recently=quiet_for < self.resume_after_seconds,
                reserved=self.reserved_slots + (replica.replica_id in self._held_back),
                queue_ahead=self.queue_ahead if quiet_for >= self.queue_ahead_after_seconds else 0,
            )
            if spare > best_spare:
                best, best_spare = replica, spare
        if best is not None:
            self.in_flight[best.replica_id] = self.in_flight.get(best.replica_id, 0) + 1
        return best

    def release(self, replica: RouteReplica) -> None:
        left = self.in_flight.get(replica.replica_id, 1) - 1
        if left > 0:
            self.in_flight[replica.replica_id] = left
        else:
            self.in_flight.pop(replica.replica_id, None)
            self._held_back.discard(replica.replica_id)
        self._notify()

    def hold_back(self, replica_id: str) -> None:
        """Leave one slot of ``replica_id`` free until batch work there drains."""
        self._held_back.add(replica_id)

    def saw_online(self, replica_id: str) -> None:
        """``replica_id`` served online traffic just now (any thread: one dict write)."""
        self._online_at[replica_id] = self.clock()

    def online_changed(self, replica_id: str, outstanding: int) -> None:
        """The gateway started or finished an online request on ``replica_id``."""
        self.saw_online(replica_id)
        if outstanding <= 0:
            asyncio.get_running_loop().call_later(self.resume_after_seconds, self._notify)

    async def wait(self, timeout_seconds: float) -> None:
        """Until a slot may have come free (or ``timeout_seconds``, as a safety net)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_seconds):
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
