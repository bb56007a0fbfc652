"""How much of a replica the batch runner may use: only what online traffic leaves free.

The gateway counts its own in-flight requests per replica (``picker.outstanding``);
the runner counts its own. Batch work never takes the last ``reserve`` slots, so an
online request that arrives finds a free slot instead of queueing behind batch work.
"""

from __future__ import annotations

from collections.abc import Callable

from regolo.server.gateway.routing_table import RouteDeployment, RouteReplica

RESERVED_ONLINE_SLOTS = 1


def spare_slots(
    slots_per_replica: int, online: int, batch_in_flight: int, reserve: int = RESERVED_ONLINE_SLOTS
) -> int:
    """Slots the batch runner may still fill on one replica (never negative)."""
    usable = (
        max(1, slots_per_replica - reserve) if online == 0 else slots_per_replica - reserve - online
    )
    return max(0, usable - batch_in_flight)


class ReplicaSlots:
    """The runner's in-flight count per replica, and the choice of the freest replica."""

    def __init__(self, slots_per_replica: int, online: Callable[[str], int]) -> None:
        self.slots_per_replica = slots_per_replica
        self.online = online
        self.in_flight: dict[str, int] = {}

    def acquire(self, deployment: RouteDeployment) -> RouteReplica | None:
        best: RouteReplica | None = None
        best_spare = 0
        for replica in deployment.replicas:
            spare = spare_slots(
                self.slots_per_replica,
                self.online(replica.replica_id),
                self.in_flight.get(replica.replica_id, 0),
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
