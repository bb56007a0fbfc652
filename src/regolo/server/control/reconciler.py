"""The reconciler: moves running replicas toward the desired state, one idempotent tick at a time.

Replica rows are written before a process starts and updated after, so a crash at any
point leaves a row the next tick can adopt, replace or clean up: never a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.backends.base import ReplicaBackend
from regolo.server.backends.placement import check_fits
from regolo.server.billing.pause import PAUSED_REASON, PAUSED_STATUS, paused_account_ids
from regolo.server.control import plan as planning
from regolo.server.control.specs_builder import (
    InstanceLookup,
    artifact_for,
    new_replica_token,
    replica_fingerprint,
    replica_spec,
    resources_for,
)
from regolo.server.control.status import DeploymentFacts, endpoint_status
from regolo.server.errors import RegoloError, Unavailable
from regolo.server.specs import ReplicaHandle, ReplicaState, Resources
from regolo.server.store.database import Database
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Deployment, Endpoint, Model, ModelVersion, Replica

log = logging.getLogger("regolo.reconciler")

Clock = Callable[[], datetime]
MAX_DRAIN_SECONDS = 30.0
CAPACITY_RETRY_SECONDS = 5.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ReconcilerDeps:
    db: Database
    backend: ReplicaBackend
    instance_lookup: InstanceLookup
    choose_runtime: Callable[..., str]  # (artifact, resources, requested) -> runtime name
    outstanding: Callable[[str], int] = lambda replica_id: 0
    max_start_attempts: int = 3
    clock: Clock = _utcnow


def handle_of(replica: Replica) -> ReplicaHandle:
    return ReplicaHandle(
        replica_id=replica.id,
        backend=replica.backend,
        address=replica.address or "",
        pid=replica.pid,
        log_path=replica.log_path,
        started_at=replica.started_at,
        node=replica.node,
    )


class Reconciler:
    def __init__(self, deps: ReconcilerDeps) -> None:
        self.deps = deps
        self.db = deps.db
        self.backend = deps.backend

    async def adopt_existing(self) -> None:
        """After a restart: keep replicas whose process is still ours, retire the rest."""
        with self.db.read() as session:
            rows = session.scalars(select(Replica).where(Replica.stopped_at.is_(None))).all()
        for replica in rows:
            alive = bool(replica.address) and self.backend.adopt(handle_of(replica))
            if not alive:
                self._finish(
                    replica.id, ReplicaState.STOPPED, "lost while the control plane was down"
                )
            else:
                log.info("re-adopted replica %s at %s", replica.id, replica.address)

    async def stop_all(self, reason: str) -> None:
        """Stop every replica this platform runs (graceful shutdown of ``regolo serve``)."""
        with self.db.read() as session:
            rows = session.scalars(select(Replica).where(Replica.stopped_at.is_(None))).all()
        for replica in rows:
            if replica.address:
                try:
                    await self.backend.stop(handle_of(replica), drain_seconds=5.0)
                except Exception:
                    log.exception("stopping replica %s at shutdown failed", replica.id)
                    continue
            self._finish(replica.id, ReplicaState.STOPPED, reason)

    async def tick(self) -> bool:
        """One pass; returns whether anything changed."""
        now = self.deps.clock()
        desired, facts = self._load(now)
        actions = planning.plan(
            desired, facts, now=now, max_start_attempts=self.deps.max_start_attempts
        )
        for deployment_id in actions.start:
            await self._start(deployment_id)
        for replica_id in actions.drain:
            self._begin_drain(replica_id, now)
        for replica_id in actions.stop:
            await self._stop(replica_id)
        changed_status = self._refresh_statuses()
        return not actions.empty or changed_status

    def _load(
        self, now: datetime
    ) -> tuple[list[planning.DesiredDeployment], list[planning.ReplicaFact]]:
        with self.db.read() as session:
            rows = session.execute(select(Deployment, Endpoint).join(Endpoint)).all()
            # An account out of prepaid credit runs nothing, whatever else asks for replicas.
            paused = paused_account_ids(session)
            desired = [
                planning.DesiredDeployment(
                    deployment_id=deployment.id,
                    replicas=0 if endpoint.account_id in paused else deployment.replicas,
                    active=deployment.removed_at is None and endpoint.deleted_at is None,
                    failed_starts=deployment.failed_starts,
                    next_start_at=deployment.next_start_at,
                    fingerprint=replica_fingerprint(endpoint),
                )
                for deployment, endpoint in rows
                if deployment.removed_at is None or _has_live(session, deployment.id)
            ]
            replicas = session.scalars(select(Replica).where(Replica.stopped_at.is_(None))).all()
            facts = [
                planning.ReplicaFact(
                    replica_id=r.id,
                    deployment_id=r.deployment_id,
                    state=ReplicaState(r.state),
                    created_at=r.created_at,
                    drain_deadline=(r.drain_started_at + timedelta(seconds=MAX_DRAIN_SECONDS))
                    if r.drain_started_at
                    else None,
                    outstanding_requests=self.deps.outstanding(r.id),
                    fingerprint=r.spec_fingerprint,
                )
                for r in replicas
            ]
        return desired, facts

    async def _start(self, deployment_id: str) -> None:
        try:
            spec = self._record_new_replica(deployment_id)
        except Unavailable as exc:  # e.g. the model is still downloading
            self._delay_deployment(deployment_id, exc.message, count_failure=False)
            return
        except RegoloError as exc:
            self._delay_deployment(deployment_id, exc.message, count_failure=True)
            return
        try:
            handle = await self.backend.start(spec)
        except RegoloError as exc:  # does not fit, or refused: not the model's fault
            self._forget(spec.replica_id)  # nothing started: keep no row per retry
            delay = getattr(exc, "retry_after_seconds", CAPACITY_RETRY_SECONDS)
            self._delay_deployment(deployment_id, exc.message, count_failure=False, delay=delay)
            return
        except Exception as exc:
            log.exception("starting replica %s failed", spec.replica_id)
            self._finish(spec.replica_id, ReplicaState.FAILED, f"start failed: {exc}")
            self._delay_deployment(deployment_id, f"start failed: {exc}", count_failure=True)
            return
        with self.db.write() as session:
            replica = session.get(Replica, spec.replica_id)
            assert replica is not None
            replica.address = handle.address
            replica.pid = handle.pid
            replica.log_path = handle.log_path
            replica.node = handle.node
            replica.started_at = handle.started_at or self.deps.clock()
        log.info("started replica %s (%s) at %s", spec.replica_id, spec.runtime, handle.address)

    def _record_new_replica(self, deployment_id: str):  # type: ignore[no-untyped-def]
        with self.db.write() as session:
            deployment = session.get(Deployment, deployment_id)
            assert deployment is not None
            endpoint = session.get(Endpoint, deployment.endpoint_id)
            version = session.get(ModelVersion, deployment.model_version_id)
            assert endpoint is not None and version is not None
            model = session.get(Model, version.model_id)
            assert model is not None
            if version.status != "ready":
                raise Unavailable(f"model {model.name}:{version.version} is {version.status}")
            artifact = artifact_for(model, version)
            resources = resources_for(endpoint, self.deps.instance_lookup)
            self._check_placeable(resources)
            runtime = self.deps.choose_runtime(artifact, resources, endpoint.runtime)
            replica = Replica(
                id=new_id("rep"),
                deployment_id=deployment.id,
                state=ReplicaState.STARTING.value,
                backend=self.backend.name,
                runtime=runtime,
                instance_type=endpoint.instance_type,
                auth_token=new_replica_token(),
                attempt=deployment.failed_starts + 1,
                created_at=self.deps.clock(),
                spec_fingerprint=replica_fingerprint(endpoint),
            )
            session.add(replica)
            return replica_spec(
                replica_id=replica.id,
                deployment_id=deployment.id,
                runtime=runtime,
                artifact=artifact,
                resources=resources,
                endpoint=endpoint,
                auth_token=replica.auth_token,
            )

    def _check_placeable(self, resources: Resources) -> None:
        """Refuse, before a replica row is written, what this backend can never place.

        The deployment then waits (``pending`` with the reason, like an unschedulable
        Kubernetes pod) and is retried, without leaving a failed row per retry.
        """
        total = self.backend.capacity()
        try:
            check_fits(resources, total, free_gpus=sum(total.gpus.values()))
        except RegoloError as exc:
            raise Unavailable(f"cannot be placed: {exc.message}") from exc

    def _forget(self, replica_id: str) -> None:
        with self.db.write() as session:
            replica = session.get(Replica, replica_id)
            if replica is not None:
                session.delete(replica)

    def _delay_deployment(
        self,
        deployment_id: str,
        reason: str,
        *,
        count_failure: bool,
        delay: float = CAPACITY_RETRY_SECONDS,
    ) -> None:
        now = self.deps.clock()
        with self.db.write() as session:
            deployment = session.get(Deployment, deployment_id)
            assert deployment is not None
            deployment.last_error = reason
            if count_failure:
                deployment.failed_starts += 1
                delay = planning.restart_backoff_seconds(deployment.failed_starts)
            deployment.next_start_at = now + timedelta(seconds=delay)

    def _begin_drain(self, replica_id: str, now: datetime) -> None:
        with self.db.write() as session:
            replica = session.get(Replica, replica_id)
            if replica is not None and replica.state != ReplicaState.DRAINING:
                replica.state = ReplicaState.DRAINING.value
                replica.drain_started_at = now

    async def _stop(self, replica_id: str) -> None:
        with self.db.read() as session:
            replica = session.get(Replica, replica_id)
            handle = handle_of(replica) if replica and replica.address else None
        if handle is not None:
            try:
                await self.backend.stop(handle, drain_seconds=5.0)
            except Exception:
                log.exception("stopping replica %s failed; will retry", replica_id)
                return
        self._finish(replica_id, None, None)

    def _finish(self, replica_id: str, state: ReplicaState | None, reason: str | None) -> None:
        """Record that a replica's process is gone; a failed replica keeps its state."""
        with self.db.write() as session:
            replica = session.get(Replica, replica_id)
            if replica is None or replica.stopped_at is not None:
                return
            if state is not None:
                replica.state = state.value
            elif replica.state != ReplicaState.FAILED:
                replica.state = ReplicaState.STOPPED.value
            replica.stopped_at = self.deps.clock()
            if reason:
                replica.reason = reason

    def _refresh_statuses(self) -> bool:
        changed = False
        with self.db.write() as session:
            endpoints = session.scalars(select(Endpoint).where(Endpoint.status != "deleted")).all()
            paused = paused_account_ids(session)
            for endpoint in endpoints:
                status, reason = self._status_of(session, endpoint)
                if endpoint.deleted_at is not None and not _endpoint_has_live(session, endpoint.id):
                    status, reason = "deleted", None  # type: ignore[assignment]
                elif endpoint.account_id in paused:
                    status, reason = PAUSED_STATUS, PAUSED_REASON
                if (endpoint.status, endpoint.status_reason) != (status, reason):
                    endpoint.status, endpoint.status_reason = status, reason
                    changed = True
        return changed

    def _status_of(self, session: Session, endpoint: Endpoint):  # type: ignore[no-untyped-def]
        facts = []
        for deployment in session.scalars(
            select(Deployment).where(
                Deployment.endpoint_id == endpoint.id, Deployment.removed_at.is_(None)
            )
        ):
            states = [
                r.state
                for r in session.scalars(
                    select(Replica).where(
                        Replica.deployment_id == deployment.id, Replica.stopped_at.is_(None)
                    )
                )
            ]
            facts.append(
                DeploymentFacts(
                    version=deployment.version,
                    traffic_weight=deployment.traffic_weight,
                    desired=deployment.replicas,
                    ready=states.count(ReplicaState.READY.value),
                    starting=states.count(ReplicaState.STARTING.value),
                    unhealthy=states.count(ReplicaState.UNHEALTHY.value),
                    failed=deployment.failed_starts >= self.deps.max_start_attempts,
                    ever_ready=deployment.ever_ready,
                    last_error=deployment.last_error,
                    waiting_reason=deployment.last_error
                    if deployment.next_start_at and not states
                    else None,
                )
            )
        status, reason = endpoint_status(facts, deleted=endpoint.deleted_at is not None)
        return status.value, reason


def _has_live(session: Session, deployment_id: str) -> bool:
    return (
        session.scalar(
            select(Replica.id)
            .where(Replica.deployment_id == deployment_id, Replica.stopped_at.is_(None))
            .limit(1)
        )
        is not None
    )


def _endpoint_has_live(session: Session, endpoint_id: str) -> bool:
    return (
        session.scalar(
            select(Replica.id)
            .join(Deployment)
            .where(Deployment.endpoint_id == endpoint_id, Replica.stopped_at.is_(None))
            .limit(1)
        )
        is not None
    )
