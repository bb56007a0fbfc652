"""The reconciler's decision: a pure function from desired and observed state to actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from regolo.server.specs import ReplicaState

LIVE_STATES = frozenset({ReplicaState.STARTING, ReplicaState.READY, ReplicaState.UNHEALTHY})
# Which replicas go first when scaling down: those not serving yet, then the sick, then the newest.
_DRAIN_ORDER = {ReplicaState.STARTING: 0, ReplicaState.UNHEALTHY: 1, ReplicaState.READY: 2}


@dataclass(frozen=True, kw_only=True)
class DesiredDeployment:
    deployment_id: str
    replicas: int
    active: bool  # False once removed from its endpoint (or the endpoint is deleted)
    failed_starts: int = 0
    next_start_at: datetime | None = None
    fingerprint: str | None = None  # what its replicas must be started with (None: anything)


@dataclass(frozen=True, kw_only=True)
class ReplicaFact:
    replica_id: str
    deployment_id: str
    state: ReplicaState
    created_at: datetime
    drain_deadline: datetime | None = None
    outstanding_requests: int = 0
    fingerprint: str | None = None  # what it was started with (None: from before fingerprints)


@dataclass(frozen=True)
class Plan:
    start: list[str] = field(default_factory=list)  # deployment ids, one entry per replica
    drain: list[str] = field(default_factory=list)  # replica ids
    stop: list[str] = field(default_factory=list)  # replica ids

    @property
    def empty(self) -> bool:
        return not (self.start or self.drain or self.stop)


def plan(
    deployments: list[DesiredDeployment],
    replicas: list[ReplicaFact],
    *,
    now: datetime,
    max_start_attempts: int,
) -> Plan:
    result = Plan()
    by_deployment: dict[str, list[ReplicaFact]] = {}
    for replica in replicas:
        by_deployment.setdefault(replica.deployment_id, []).append(replica)
    known = {deployment.deployment_id for deployment in deployments}
    for deployment in deployments:
        live = [
            r for r in by_deployment.get(deployment.deployment_id, []) if r.state in LIVE_STATES
        ]
        wanted = deployment.replicas if deployment.active else 0
        outdated = [r for r in live if _outdated(r, deployment)]
        if len(live) < wanted and _may_start(deployment, now, max_start_attempts):
            result.start.extend([deployment.deployment_id] * (wanted - len(live)))
        elif outdated and wanted:
            _roll(result, deployment, live, outdated, wanted, now, max_start_attempts)
        elif len(live) > wanted:
            ordered = sorted(live, key=lambda r: (_DRAIN_ORDER[r.state], -r.created_at.timestamp()))
            result.drain.extend(r.replica_id for r in ordered[: len(live) - wanted])
    for replica in replicas:
        if replica.deployment_id not in known and replica.state in LIVE_STATES:
            result.drain.append(replica.replica_id)
        if replica.state == ReplicaState.DRAINING and _drained(replica, now):
            result.stop.append(replica.replica_id)
        elif replica.state == ReplicaState.FAILED:  # its process may still linger
            result.stop.append(replica.replica_id)
    return result


def _outdated(replica: ReplicaFact, deployment: DesiredDeployment) -> bool:
    return (
        replica.fingerprint is not None
        and deployment.fingerprint is not None
        and replica.fingerprint != deployment.fingerprint
    )


def _roll(
    result: Plan,
    deployment: DesiredDeployment,
    live: list[ReplicaFact],
    outdated: list[ReplicaFact],
    wanted: int,
    now: datetime,
    max_start_attempts: int,
) -> None:
    """Replace replicas started with an older configuration, one at a time and never
    below ``wanted`` serving: start one new replica, drain an old one once it is ready.
    """
    old = {id(r) for r in outdated}
    if any(r.state != ReplicaState.READY and id(r) not in old for r in live):
        return  # a new replica is not serving yet: the old ones keep serving meanwhile
    if len(live) > wanted:  # the new one is ready: the oldest configuration goes first
        ordered = sorted(outdated, key=lambda r: (_DRAIN_ORDER[r.state], r.created_at))
        result.drain.extend(r.replica_id for r in ordered[: len(live) - wanted])
    elif _may_start(deployment, now, max_start_attempts):
        result.start.append(deployment.deployment_id)


def _may_start(deployment: DesiredDeployment, now: datetime, max_start_attempts: int) -> bool:
    if deployment.failed_starts >= max_start_attempts:
        return False
    return deployment.next_start_at is None or deployment.next_start_at <= now


def _drained(replica: ReplicaFact, now: datetime) -> bool:
    if replica.outstanding_requests == 0:
        return True
    return replica.drain_deadline is not None and replica.drain_deadline <= now


def restart_backoff_seconds(failures: int) -> float:
    """Exponential backoff between restarts: 1, 2, 4, ... capped at 60 s."""
    return float(min(60, 2 ** max(0, failures - 1)))
