"""The batch runner: validates queued batches, runs their lines on spare replica
capacity, and finalizes them.

``step()`` is one tick of the controller loop: bookkeeping in the store, then it makes
sure each in-progress batch has its workers. Workers are tasks on the controller's
event loop; each claims a line (with a lease), waits for a replica slot that online
traffic leaves free, sends the request and records the result in one transaction.
Store calls run in threads so a slow write never stalls the requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from regolo.server.batch import dispatch, jobs
from regolo.server.batch.capacity import ReplicaSlots
from regolo.server.batch.files import FileStore
from regolo.server.batch.jobs import ClaimedLine, LineResult
from regolo.server.batch.limits import BatchLimits
from regolo.server.batch.status import STOPPING, BatchStatus
from regolo.server.gateway.picker import pick_deployment
from regolo.server.gateway.request_body import BodyLimits
from regolo.server.gateway.routing_table import (
    RouteDeployment,
    RouteEndpoint,
    RouteReplica,
    RoutingTable,
)
from regolo.server.specs import UsageRecord
from regolo.server.store.database import Database

log = logging.getLogger("regolo.batch")
Clock = Callable[[], datetime]
SCALE_REQUEST_INTERVAL_SECONDS = 5.0


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(kw_only=True)
class RunnerDeps:
    db: Database
    store: FileStore
    limits: BatchLimits
    routes: Callable[[], RoutingTable]
    online_outstanding: Callable[[str], int] = lambda replica_id: 0
    clock: Clock = utcnow
    body_limits: BodyLimits = field(default_factory=BodyLimits)
    record_usage: Callable[[UsageRecord], None] | None = None
    on_no_ready_replica: Callable[[str], None] | None = None
    transport: httpx.AsyncBaseTransport | None = None


class BatchRunner:
    def __init__(self, deps: RunnerDeps) -> None:
        self.deps = deps
        self.slots = ReplicaSlots(deps.limits.slots_per_replica, deps.online_outstanding)
        self._workers: dict[str, set[asyncio.Task[None]]] = {}
        self._running_ids: set[str] = set()
        self._client: httpx.AsyncClient | None = None
        self._adopted = False
        self._rng = random.Random()
        self._scale_requested: dict[str, float] = {}
        self._claimed: dict[str, ClaimedLine] = {}

    # ---- the tick ----------------------------------------------------------------------

    async def step(self) -> bool:
        deps = self.deps
        if not self._adopted:
            released = await asyncio.to_thread(jobs.release_all_running, deps.db)
            if released:
                log.info("re-queued %d batch lines left running by a previous runner", released)
            self._adopted = True
        changed = bool(await asyncio.to_thread(jobs.expire_waiting, deps.db, deps.clock()))
        changed |= await self._validate_queued()
        in_progress = await asyncio.to_thread(jobs.batch_ids, deps.db, {BatchStatus.IN_PROGRESS})
        for batch_id in in_progress:
            changed |= (
                await asyncio.to_thread(jobs.advance, deps.db, batch_id, deps.clock()) is not None
            )
        self._running_ids = set(
            await asyncio.to_thread(jobs.batch_ids, deps.db, {BatchStatus.IN_PROGRESS})
        )
        for batch_id in self._running_ids:
            self._ensure_workers(batch_id)
        for batch_id in await asyncio.to_thread(jobs.batch_ids, deps.db, STOPPING):
            changed |= (
                await asyncio.to_thread(jobs.finalize, deps.db, deps.store, batch_id, deps.clock())
                is not None
            )
        return changed

    async def close(self) -> None:
        tasks = [task for tasks in self._workers.values() for task in tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        # Lines this runner holds go back to the queue now rather than at lease expiry.
        for claimed in list(self._claimed.values()):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(jobs.release_line, self.deps.db, claimed)
        self._claimed.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _validate_queued(self) -> bool:
        changed = False
        deps = self.deps
        while batch_id := await asyncio.to_thread(
            jobs.next_to_validate, deps.db, deps.limits.max_running_per_account
        ):
            outcome = await asyncio.to_thread(
                jobs.validate_batch, deps.db, deps.store, deps.limits, batch_id, deps.clock()
            )
            log.info("batch %s validated: %s", batch_id, outcome)
            changed = True
            if outcome == "skipped":
                break
        return changed

    # ---- workers ---------------------------------------------------------------------

    def _ensure_workers(self, batch_id: str) -> None:
        tasks = self._workers.setdefault(batch_id, set())
        while len(tasks) < self.deps.limits.max_inflight_per_batch:
            task = asyncio.get_running_loop().create_task(self._work(batch_id))
            tasks.add(task)
            task.add_done_callback(functools.partial(self._worker_done, batch_id, tasks))

    def _worker_done(
        self, batch_id: str, tasks: set[asyncio.Task[None]], task: asyncio.Task[None]
    ) -> None:
        tasks.discard(task)
        if not tasks and self._workers.get(batch_id) is tasks:
            del self._workers[batch_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("batch worker for %s failed", batch_id, exc_info=task.exception())

    async def _work(self, batch_id: str) -> None:
        deps = self.deps
        while batch_id in self._running_ids:
            claimed = await asyncio.to_thread(
                jobs.claim_line, deps.db, batch_id, deps.clock(), deps.limits.lease_seconds
            )
            if claimed is None:
                return
            self._claimed[claimed.token] = claimed
            result = await self._run_line(claimed)
            if result is None:
                await asyncio.to_thread(jobs.release_line, deps.db, claimed)
            else:
                await asyncio.to_thread(jobs.complete_line, deps.db, claimed, result, deps.clock())
            del self._claimed[claimed.token]
            if result is None:
                return

    async def _run_line(self, claimed: ClaimedLine) -> LineResult | None:
        """The line's result, or ``None`` when its batch stopped before it could run."""
        rejected = dispatch.check_line(claimed, self.deps.body_limits)
        if rejected is not None:
            return rejected
        result: LineResult | None = None
        for attempt in range(self.deps.limits.max_attempts):
            if attempt:
                await dispatch.backoff(attempt)
            endpoint = await self._ready_endpoint(claimed)
            if endpoint is None or isinstance(endpoint, LineResult):
                return endpoint
            acquired = await self._acquire(claimed, endpoint)
            if acquired is None:
                return None
            result, retry = await self._send(claimed, endpoint, *acquired)
            if not retry:
                break
        return result

    async def _send(
        self,
        claimed: ClaimedLine,
        endpoint: RouteEndpoint,
        deployment: RouteDeployment,
        replica: RouteReplica,
    ) -> tuple[LineResult, bool]:
        started = time.perf_counter()
        response: httpx.Response | None = None
        try:
            response = await dispatch.send_once(
                self._http(),
                replica,
                claimed.url,
                dispatch.upstream_body(claimed, deployment),
                endpoint.request_timeout_seconds,
            )
            result = dispatch.result_of(response, f"req_batch_{claimed.token}")
        except httpx.HTTPError as error:
            result = dispatch.unreachable(error)
        finally:
            self.slots.release(replica)
        self._record(
            claimed, endpoint, deployment.deployment_id, replica.replica_id, result, started
        )
        return result, dispatch.should_retry(response)

    async def _ready_endpoint(self, claimed: ClaimedLine) -> RouteEndpoint | LineResult | None:
        """The line's endpoint once it has a ready replica; waits while the batch runs."""
        while claimed.batch_id in self._running_ids:
            table = self.deps.routes()
            endpoint = table.by_name(claimed.account_id, claimed.endpoint_name)
            if endpoint is None:
                return LineResult(
                    error_code="model_not_found",
                    error_message=f"the endpoint {claimed.endpoint_name!r} no longer exists",
                )
            if endpoint.has_ready_replica():
                return endpoint
            self._request_replica(endpoint.endpoint_id)
            await asyncio.sleep(0.5)
        return None

    async def _acquire(
        self, claimed: ClaimedLine, endpoint: RouteEndpoint
    ) -> tuple[RouteDeployment, RouteReplica] | None:
        while claimed.batch_id in self._running_ids:
            deployment = pick_deployment(endpoint.deployments, self._rng)
            replica = self.slots.acquire(deployment) if deployment is not None else None
            if deployment is not None and replica is not None:
                return deployment, replica
            await asyncio.sleep(self.deps.limits.idle_backoff_seconds)
            endpoint = self.deps.routes().by_id(endpoint.endpoint_id) or endpoint
        return None

    def _request_replica(self, endpoint_id: str) -> None:
        """Ask for a replica (scale from zero), at most once per interval per endpoint."""
        hook = self.deps.on_no_ready_replica
        now = time.monotonic()
        if hook is None or now < self._scale_requested.get(endpoint_id, 0.0):
            return
        self._scale_requested[endpoint_id] = now + SCALE_REQUEST_INTERVAL_SECONDS
        hook(endpoint_id)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
            self._client = httpx.AsyncClient(transport=self.deps.transport, limits=limits)
        return self._client

    def _record(
        self,
        claimed: ClaimedLine,
        endpoint: RouteEndpoint,
        deployment_id: str,
        replica_id: str,
        result: LineResult,
        started: float,
    ) -> None:
        if self.deps.record_usage is None:
            return
        prompt, completion = dispatch.usage_tokens(result.response_body)
        self.deps.record_usage(
            UsageRecord(
                request_id=result.request_id or f"req_batch_{claimed.token}",
                at=time.time(),
                account_id=claimed.account_id,
                key_id=claimed.key_id,
                endpoint_id=endpoint.endpoint_id,
                deployment_id=deployment_id,
                version=None,
                replica_id=replica_id,
                status_code=result.status_code or 502,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                prompt_tokens=prompt,
                completion_tokens=completion,
            )
        )
