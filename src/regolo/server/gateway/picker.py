"""Choosing where a request goes: a deployment by traffic weight, then a replica.

Replicas are chosen by least outstanding requests between two random candidates
(power of two choices). A replica that failed ``failure_threshold`` times in a row
is ejected for ``ejection_seconds``; when every candidate is ejected they are all
used again, so ejection never takes an endpoint down on its own.

``on_change`` (optional) hears every change of a replica's outstanding count, on the
gateway's thread; the batch runner uses it to yield to online traffic at once. It must
be cheap and must not raise.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Sequence

from regolo.server.gateway.routing_table import RouteDeployment, RouteReplica


def pick_deployment(
    deployments: Sequence[RouteDeployment], rng: random.Random
) -> RouteDeployment | None:
    """A deployment with ready replicas, drawn in proportion to ``traffic_weight``."""
    if len(deployments) == 1:
        only = deployments[0]
        return only if only.replicas and only.traffic_weight > 0 else None
    live = [d for d in deployments if d.replicas and d.traffic_weight > 0]
    if len(live) <= 1:
        return live[0] if live else None
    point = rng.random() * sum(d.traffic_weight for d in live)
    for deployment in live:
        point -= deployment.traffic_weight
        if point < 0:
            return deployment
    return live[-1]


class ReplicaPicker:
    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        ejection_seconds: float = 10.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.ejection_seconds = ejection_seconds
        self.outstanding: dict[str, int] = {}
        self.on_change: Callable[[str, int], None] | None = None
        self._failures: dict[str, int] = {}
        self._ejected_until: dict[str, float] = {}
        self._rng = rng or random.Random()
        self._clock = clock

    def pick(
        self, replicas: Sequence[RouteReplica], exclude: Collection[str] = ()
    ) -> RouteReplica | None:
        candidates = [r for r in replicas if r.replica_id not in exclude] if exclude else replicas
        if len(candidates) > 1 and self._ejected_until:
            now = self._clock()
            healthy = [r for r in candidates if self._ejected_until.get(r.replica_id, 0.0) <= now]
            candidates = healthy or candidates
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        first, second = self._rng.sample(candidates, 2)
        get = self.outstanding.get
        return second if get(second.replica_id, 0) < get(first.replica_id, 0) else first

    def started(self, replica_id: str) -> None:
        count = self.outstanding[replica_id] = self.outstanding.get(replica_id, 0) + 1
        if self.on_change is not None:
            self.on_change(replica_id, count)

    def finished(self, replica_id: str, *, failed: bool) -> None:
        count = self.outstanding[replica_id] = self.outstanding.get(replica_id, 1) - 1
        if self.on_change is not None:
            self.on_change(replica_id, count)
        if not failed:
            if replica_id in self._failures:
                del self._failures[replica_id]
                self._ejected_until.pop(replica_id, None)
            return
        failures = self._failures[replica_id] = self._failures.get(replica_id, 0) + 1
        if failures >= self.failure_threshold:
            self._ejected_until[replica_id] = self._clock() + self.ejection_seconds

    def is_ejected(self, replica_id: str) -> bool:
        return self._ejected_until.get(replica_id, 0.0) > self._clock()

    def forget_except(self, replica_ids: Collection[str]) -> None:
        """Drop state of replicas that left the routing table (bounded memory)."""
        for state in (self._failures, self._ejected_until):
            for replica_id in [r for r in state if r not in replica_ids]:
                del state[replica_id]
        for replica_id in [
            r for r, n in self.outstanding.items() if n <= 0 and r not in replica_ids
        ]:
            del self.outstanding[replica_id]
