"""The autoscaler loop: each deployment's decision on its own traffic, about once a second.

Reads the desired state and the replica rows, takes one load sample per deployment,
runs the pure ``decide`` and writes a changed replica count through the desired state
(``Deployment.replicas``, and ``Endpoint.replicas`` for the stable version); the
reconciler then starts or drains replicas. Every change, and every new reason to hold,
is recorded with its inputs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.autoscaling.decide import (
    Decision,
    Recommendation,
    ScalingContext,
    decide,
    trim_history,
)
from regolo.server.autoscaling.policy import ScalingPolicy, implicit_policy, policy_from_dict
from regolo.server.autoscaling.signals import (
    LoadSample,
    LoadSeries,
    UsageTap,
    metric_windows,
    share_waiting,
)
from regolo.server.autoscaling.tables import AutoscalingEvent, AutoscalingPolicyRow
from regolo.server.quantities import parse_cpu
from regolo.server.store.database import Database
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Deployment, Endpoint, Replica

HOLD_EVENT_MIN_SECONDS = 10.0  # a new reason to hold is logged at most this often
IMPLICIT_SCALE_DOWN_SECONDS = 300.0


class LoadReader(Protocol):
    """What the gateway knows right now (the fake in tests is a pair of dicts)."""

    def in_flight(self, replica_ids: Iterable[str]) -> int: ...

    def waiting(self, endpoint_id: str) -> int: ...


@dataclass(frozen=True, kw_only=True)
class Target:
    """One deployment to decide for, as read from the store."""

    endpoint_id: str
    deployment_id: str
    version: str
    stable: bool
    traffic_weight: float
    policy: ScalingPolicy
    current_replicas: int
    ready_replica_ids: tuple[str, ...]
    cpu_usage: float


@dataclass
class _Memory:
    first_seen: float
    history: tuple[Recommendation, ...] = ()
    panic_until: float | None = None
    last_reason: str = ""
    last_hold_event_at: float = float("-inf")


class Autoscaler:
    def __init__(
        self, db: Database, tap: UsageTap, load: LoadReader, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.tap = tap
        self.load = load
        self.clock = clock
        self.tick_seconds = 1.0  # the first sample stands for one tick of watching
        self.samples = LoadSeries()
        self._memory: dict[str, _Memory] = {}

    def tick(self) -> bool:
        """One decision per deployment under a policy; whether a replica count changed."""
        now = self.clock()
        targets = read_targets(self.db)
        waiting = self._waiting(targets)
        decisions = [(t, self._decide(t, waiting.get(t.deployment_id, 0), now)) for t in targets]
        self._forget_except({t.deployment_id for t in targets})
        return self._write(decisions, now)

    def _waiting(self, targets: list[Target]) -> dict[str, int]:
        by_endpoint: dict[str, dict[str, float]] = {}
        for target in targets:
            by_endpoint.setdefault(target.endpoint_id, {})[target.deployment_id] = (
                target.traffic_weight
            )
        out: dict[str, int] = {}
        for endpoint_id, weights in by_endpoint.items():
            out.update(share_waiting(self.load.waiting(endpoint_id), weights))
        return out

    def _decide(self, target: Target, waiting: int, now: float) -> Decision:
        memory = self._memory.setdefault(target.deployment_id, _Memory(first_seen=now))
        in_flight = self.load.in_flight(target.ready_replica_ids)
        ready = len(target.ready_replica_ids)
        self.samples.add(
            target.deployment_id, LoadSample(now, ready, in_flight, waiting, target.cpu_usage)
        )
        policy = target.policy
        observed_since = max(self.tap.started_at, memory.first_seen)
        windows = metric_windows(
            policy,
            now=now,
            observed_since=observed_since,
            ready_replicas=ready,
            completions=self.tap.since(target.deployment_id, now - policy.stable_window_seconds),
            samples=self.samples.window(target.deployment_id, now - policy.stable_window_seconds),
        )
        last = max(self.tap.last_at(target.deployment_id) or 0.0, memory.first_seen)
        idle = 0.0 if in_flight or waiting else now - last
        decision = decide(
            ScalingContext(
                policy=policy,
                now=now,
                current_replicas=target.current_replicas,
                ready_replicas=ready,
                metrics=windows,
                waiting_requests=waiting,
                idle_seconds=idle,
                history=memory.history,
                panic_until=memory.panic_until,
                observed_seconds=now - observed_since + self.tick_seconds,
            )
        )
        memory.history = trim_history(
            (*memory.history, Recommendation(now, decision.recommendation)), policy, now
        )
        memory.panic_until = decision.panic_until
        return decision

    def _write(self, decisions: list[tuple[Target, Decision]], now: float) -> bool:
        events = [e for e in (self._event(t, d, now) for t, d in decisions) if e is not None]
        changes = [(t, d) for t, d in decisions if d.desired != t.current_replicas]
        if not events and not changes:
            return False
        changed = False
        with self.db.write() as session:
            for target, decision in changes:
                changed |= _apply(session, target, decision.desired)
            session.add_all(events)
        return changed

    def _event(self, target: Target, decision: Decision, now: float) -> AutoscalingEvent | None:
        memory = self._memory[target.deployment_id]
        scaled = decision.desired != target.current_replicas
        routine = decision.reason in ("within thresholds", "idle at zero replicas")
        if not scaled:
            fresh = decision.reason != memory.last_reason
            if routine or not fresh or now - memory.last_hold_event_at < HOLD_EVENT_MIN_SECONDS:
                memory.last_reason = decision.reason if routine else memory.last_reason
                return None
            memory.last_hold_event_at = now
        memory.last_reason = decision.reason
        return AutoscalingEvent(
            id=new_id("ase"),
            endpoint_id=target.endpoint_id,
            deployment_id=target.deployment_id,
            version=target.version,
            kind="scale" if scaled else "hold",
            at=datetime.fromtimestamp(now, UTC),
            current_replicas=target.current_replicas,
            desired_replicas=decision.desired,
            reason=decision.reason,
            inputs=decision.inputs,
        )

    def _forget_except(self, deployment_ids: set[str]) -> None:
        for deployment_id in [d for d in self._memory if d not in deployment_ids]:
            del self._memory[deployment_id]
        self.samples.forget_except(deployment_ids)


def _apply(session: Session, target: Target, desired: int) -> bool:
    """Write the new count unless someone else changed it since we read it."""
    deployment = session.get(Deployment, target.deployment_id)
    if deployment is None or deployment.removed_at is not None:
        return False
    if deployment.replicas != target.current_replicas:
        return False
    deployment.replicas = desired
    endpoint = session.get(Endpoint, target.endpoint_id)
    if endpoint is not None and endpoint.stable_version == deployment.version:
        endpoint.replicas = desired
    return True


def read_targets(db: Database) -> list[Target]:
    with db.read() as session:
        endpoints = session.scalars(select(Endpoint).where(Endpoint.deleted_at.is_(None))).all()
        stored = {
            row.endpoint_id: row.policy for row in session.scalars(select(AutoscalingPolicyRow))
        }
        deployments = session.scalars(
            select(Deployment).where(Deployment.removed_at.is_(None))
        ).all()
        replicas = session.scalars(
            select(Replica).where(Replica.state == "ready", Replica.stopped_at.is_(None))
        ).all()
    ready: dict[str, list[Replica]] = {}
    for replica in replicas:
        ready.setdefault(replica.deployment_id, []).append(replica)
    by_endpoint: dict[str, list[Deployment]] = {}
    for deployment in deployments:
        by_endpoint.setdefault(deployment.endpoint_id, []).append(deployment)
    targets: list[Target] = []
    for endpoint in endpoints:
        policy = policy_of(endpoint, stored.get(endpoint.id))
        if policy is None or not policy.enabled:
            continue
        for deployment in by_endpoint.get(endpoint.id, []):
            targets.append(_target(endpoint, deployment, policy, ready.get(deployment.id, [])))
    return targets


def policy_of(endpoint: Endpoint, stored: dict[str, object] | None) -> ScalingPolicy | None:
    if stored is not None:
        return policy_from_dict(dict(stored))
    policy = implicit_policy(
        endpoint.min_replicas, endpoint.max_replicas, endpoint.target_utilization
    )
    if policy is None:
        return None
    # Slow to shrink, like Kubernetes: nobody asked for this policy by name.
    return dataclasses.replace(policy, scale_down_stabilization_seconds=IMPLICIT_SCALE_DOWN_SECONDS)


def _target(
    endpoint: Endpoint, deployment: Deployment, policy: ScalingPolicy, ready: list[Replica]
) -> Target:
    stable = deployment.version == endpoint.stable_version
    if not stable:  # min_replicas is for the version carrying the traffic
        policy = dataclasses.replace(policy, min_replicas=min(policy.min_replicas, 1))
    cores = _requested_cores(endpoint)
    used = [r.cpu_cores_used for r in ready if r.cpu_cores_used is not None]
    return Target(
        endpoint_id=endpoint.id,
        deployment_id=deployment.id,
        version=deployment.version,
        stable=stable,
        traffic_weight=deployment.traffic_weight,
        policy=policy,
        current_replicas=deployment.replicas,
        ready_replica_ids=tuple(r.id for r in ready),
        cpu_usage=(sum(used) / len(used) / cores) if used else 0.0,
    )


def _requested_cores(endpoint: Endpoint) -> float:
    try:
        return parse_cpu(endpoint.cpu_request) if endpoint.cpu_request else 1.0
    except ValueError:
        return 1.0


__all__ = ["Autoscaler", "LoadReader", "Target", "policy_of", "read_targets"]
