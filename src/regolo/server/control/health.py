"""Health checker: probes every replica with a real tiny request and records what it saw.

A live process is not enough (RELIABILITY R5): a replica is ready only while a one-token
inference succeeds. Replicas that keep failing are ejected (unhealthy) and then
replaced; one that never comes up ends failed with the tail of its log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from regolo.server.backends.base import ReplicaBackend
from regolo.server.control.plan import restart_backoff_seconds
from regolo.server.control.reconciler import handle_of
from regolo.server.specs import ObservedReplica, ReplicaState
from regolo.server.store.database import Database
from regolo.server.store.tables import Deployment, Model, ModelVersion, Replica

log = logging.getLogger("regolo.health")

UNHEALTHY_AFTER_FAILURES = 2
REPLACE_AFTER_FAILURES = 5
PROBE_TIMEOUT_SECONDS = 15.0
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class ProbeTarget:
    replica_id: str
    state: ReplicaState
    address: str
    token: str
    model: str
    task: str
    started_at: datetime | None


@dataclass(frozen=True)
class ProbeResult:
    replica_id: str
    ok: bool
    detail: str | None = None


@dataclass(frozen=True)
class ProbeSample:
    target: ProbeTarget
    result: ProbeResult
    observed: ObservedReplica | None


ProbeObserver = Callable[[datetime, list[ProbeSample]], None]


class HealthChecker:
    def __init__(
        self,
        db: Database,
        backend: ReplicaBackend,
        *,
        start_timeout_seconds: float,
        probe_timeout_seconds: float = PROBE_TIMEOUT_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.backend = backend
        self.start_timeout = timedelta(seconds=start_timeout_seconds)
        self.clock = clock
        self._client = httpx.AsyncClient(timeout=probe_timeout_seconds)
        self.last_check: datetime | None = None
        # Called after every tick with what each probe saw (metrics: availability, cpu).
        self.observers: list[ProbeObserver] = []

    async def aclose(self) -> None:
        await self._client.aclose()

    async def tick(self) -> bool:
        """Probe every live replica once; returns whether any replica changed state."""
        targets = self._targets()
        if not targets:
            self._notify_observers([])
            return False
        observed = await self.backend.observe([self._handle(t.replica_id) for t in targets])
        alive = {o.handle.replica_id: o for o in observed}
        results = await asyncio.gather(*(self._probe(t, alive.get(t.replica_id)) for t in targets))
        self.last_check = self.clock()
        # A list, not any(generator): every replica's probe must be recorded, not only
        # those before the first one that changed state.
        changed = [
            self._record(t, r, alive.get(t.replica_id))
            for t, r in zip(targets, results, strict=True)
        ]
        self._notify_observers(
            [
                ProbeSample(t, r, alive.get(t.replica_id))
                for t, r in zip(targets, results, strict=True)
            ]
        )
        return any(changed)

    def _notify_observers(self, samples: list[ProbeSample]) -> None:
        at = self.clock()
        for observer in self.observers:
            try:
                observer(at, samples)
            except Exception:  # an observer must never stop health checking
                log.exception("health observer failed")

    def _targets(self) -> list[ProbeTarget]:
        with self.db.read() as session:
            rows = session.execute(
                select(Replica, ModelVersion, Model)
                .join(Deployment, Replica.deployment_id == Deployment.id)
                .join(ModelVersion, Deployment.model_version_id == ModelVersion.id)
                .join(Model, ModelVersion.model_id == Model.id)
                .where(
                    Replica.stopped_at.is_(None),
                    Replica.address.is_not(None),
                    Replica.state.in_(["starting", "ready", "unhealthy"]),
                )
            ).all()
            return [
                ProbeTarget(
                    replica_id=replica.id,
                    state=ReplicaState(replica.state),
                    address=replica.address or "",
                    token=replica.auth_token,
                    model=model.name,
                    task=(version.facts or {}).get("task", "text-generation"),
                    started_at=replica.started_at,
                )
                for replica, version, model in rows
            ]

    def _handle(self, replica_id: str):  # type: ignore[no-untyped-def]
        with self.db.read() as session:
            replica = session.get(Replica, replica_id)
            assert replica is not None
            return handle_of(replica)

    async def _probe(self, target: ProbeTarget, observed: ObservedReplica | None) -> ProbeResult:
        if observed is not None and not observed.alive:
            return ProbeResult(
                target.replica_id, False, f"process exited (code {observed.exit_code})"
            )
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        try:
            if target.task == "feature-extraction":
                response = await self._client.post(
                    f"{target.address}/v1/embeddings",
                    json={"model": target.model, "input": "ping"},
                    headers=headers,
                )
            else:
                response = await self._client.post(
                    f"{target.address}/v1/chat/completions",
                    json={
                        "model": target.model,
                        "messages": [{"role": "user", "content": "ping"}],
                        "max_tokens": 1,
                        "temperature": 0,
                    },
                    headers=headers,
                )
        except httpx.HTTPError as exc:
            return ProbeResult(target.replica_id, False, f"probe failed: {type(exc).__name__}")
        if response.status_code != 200:
            return ProbeResult(target.replica_id, False, f"probe answered {response.status_code}")
        return ProbeResult(target.replica_id, True)

    def _record(
        self, target: ProbeTarget, result: ProbeResult, observed: ObservedReplica | None
    ) -> bool:
        now = self.clock()
        dead = observed is not None and not observed.alive
        with self.db.write() as session:
            replica = session.get(Replica, target.replica_id)
            if replica is None or replica.stopped_at is not None or replica.state == "draining":
                return False
            deployment = session.get(Deployment, replica.deployment_id)
            assert deployment is not None
            replica.last_probe_at = now
            if observed is not None:
                replica.cpu_cores_used = observed.cpu_cores_used
                replica.memory_bytes = observed.memory_bytes
            before = replica.state
            if result.ok:
                replica.consecutive_failures = 0
                replica.state = ReplicaState.READY.value
                replica.reason = None
                if replica.ready_at is None:
                    replica.ready_at = now
                deployment.failed_starts = 0
                deployment.next_start_at = None
                deployment.ever_ready = True
                return before != replica.state
            replica.consecutive_failures += 1
            replica.reason = result.detail
            if before == ReplicaState.STARTING.value:
                timed_out = (
                    replica.started_at is not None and now - replica.started_at > self.start_timeout
                )
                if dead or timed_out:
                    why = (
                        result.detail if dead else f"not ready after {self.start_timeout.seconds} s"
                    )
                    self._fail_start(replica, deployment, why, now)
                return before != replica.state
            if dead or replica.consecutive_failures >= REPLACE_AFTER_FAILURES:
                replica.state = ReplicaState.FAILED.value
                deployment.next_start_at = now + timedelta(seconds=restart_backoff_seconds(1))
            elif replica.consecutive_failures >= UNHEALTHY_AFTER_FAILURES:
                replica.state = ReplicaState.UNHEALTHY.value
            return before != replica.state

    def _fail_start(
        self, replica: Replica, deployment: Deployment, why: str | None, now: datetime
    ) -> None:
        tail = self._log_tail(replica)
        reason = f"{why}; last log lines:\n{tail}" if tail else (why or "failed to start")
        replica.state = ReplicaState.FAILED.value
        replica.reason = reason
        deployment.failed_starts += 1
        deployment.last_error = reason
        deployment.next_start_at = now + timedelta(
            seconds=restart_backoff_seconds(deployment.failed_starts)
        )

    def _log_tail(self, replica: Replica) -> str:
        try:
            return str(self.backend.logs(handle_of(replica), lines=LOG_TAIL_LINES)).strip()
        except Exception:
            return ""
