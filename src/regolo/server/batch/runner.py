"""The batch runner: validates queued batches, runs their lines on spare replica
capacity, and finalizes them.

``step()`` is one tick of the controller loop: bookkeeping in the store, then it makes
sure each in-progress batch has its workers. Workers are tasks on the controller's
event loop; each claims a line (with a lease), waits for a replica slot that online
traffic leaves free, sends the request and records the result, with the claim of its
next line, in one transaction (shared by results that finish together: ``writer``).
Store calls run in threads so a slow write never stalls the requests in flight.

Online traffic has strict priority (``capacity``). When the gateway starts an online
request on a replica (``notice_online``, called on the gateway's thread) the runner
cancels its requests in flight there. A preempted line keeps its claim: its worker
waits for a free slot again and sends it again, without counting an attempt, so it
runs again as soon as a replica is free and still gets exactly one result.
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

from regolo.server.batch import dispatch, jobs
from regolo.server.batch.capacity import ReplicaSlots
from regolo.server.batch.files import FileStore
from regolo.server.batch.jobs import ClaimedLine, LineResult
from regolo.server.batch.limits import BatchLimits
from regolo.server.batch.status import STOPPING, BatchStatus
from regolo.server.batch.writer import ResultWriter
from regolo.server.gateway.picker import pick_deployment
from regolo.server.gateway.request_body import BodyLimits
from regolo.server.gateway.routing_table import (
    RouteDeployment,
    RouteEndpoint,
    RouteReplica,
    RoutingTable,
)
from regolo.server.gateway.upstream import UpstreamPool
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
    # False where the gateway runs in another process: the runner cannot see online
    # requests (nor preempt for them), so it leaves one slot of each replica to them.
    online_visible: bool = True
    clock: Clock = utcnow
    body_limits: BodyLimits = field(default_factory=BodyLimits)
    record_usage: Callable[[UsageRecord], None] | None = None
    on_no_ready_replica: Callable[[str], None] | None = None


class BatchRunner:
    def __init__(self, deps: RunnerDeps) -> None:
        self.deps = deps
        self.slots = ReplicaSlots(
            deps.limits.slots_per_replica,
            deps.online_outstanding,
            resume_after_seconds=deps.limits.resume_after_online_seconds,
            reserved_slots=0 if deps.online_visible else 1,
            queue_ahead=deps.limits.queue_ahead_per_replica,
        )
        self.preemptions = 0  # batch requests cancelled for online traffic, since start
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sending: dict[str, set[asyncio.Task[tuple[LineResult, bool]]]] = {}
        self._preempted: set[asyncio.Task[tuple[LineResult, bool]]] = set()
        self._sent_at: dict[asyncio.Task[tuple[LineResult, bool]], float] = {}
        self._settling = asyncio.Lock()
        self._writer = ResultWriter(deps.db, deps.clock, deps.limits.lease_seconds)
        self._workers: dict[str, set[asyncio.Task[None]]] = {}
        self._running_ids: set[str] = set()
        self._pool: UpstreamPool | None = None
        self._adopted = False
        self._rng = random.Random()
        self._scale_requested: dict[str, float] = {}
        self._claimed: dict[str, ClaimedLine] = {}

    # ---- the tick ----------------------------------------------------------------------

    async def step(self) -> bool:
        deps = self.deps
        self._loop = asyncio.get_running_loop()
        if not self._adopted:
            released = await asyncio.to_thread(jobs.release_all_running, deps.db)
            if released:
                log.info("re-queued %d batch lines left running by a previous runner", released)
            self._adopted = True
        batches = await asyncio.to_thread(jobs.unfinished_batches, deps.db)
        if not batches:  # the usual tick on a platform: one read
            self._running_ids = set()
            return False
        changed = False
        if any(status == BatchStatus.VALIDATING for status, _ in batches.values()):
            changed |= bool(await asyncio.to_thread(jobs.expire_waiting, deps.db, deps.clock()))
            changed |= await self._validate_queued()
        now = deps.clock()
        for batch_id, (status, expires_at) in batches.items():
            # While a batch has workers, the last of them to find no line ends it
            # (``_settle``): the tick only looks at its window, and at batches that no
            # worker of this runner has taken up (adopted after a restart, or all done).
            if status == BatchStatus.IN_PROGRESS and (
                now >= expires_at or batch_id not in self._workers
            ):
                changed |= (
                    await asyncio.to_thread(jobs.advance, deps.db, batch_id, deps.clock())
                    is not None
                )
        if changed:
            batches = await asyncio.to_thread(jobs.unfinished_batches, deps.db)
        self._running_ids = {
            batch_id
            for batch_id, (status, _) in batches.items()
            if status == BatchStatus.IN_PROGRESS
        }
        for batch_id in self._running_ids:
            self._ensure_workers(batch_id)
        self._hand_back_a_slot()
        for batch_id, (status, _) in batches.items():
            if status in STOPPING:
                changed |= await self._finalize(batch_id)
        return changed

    async def _finalize(self, batch_id: str) -> bool:
        deps = self.deps
        async with self._settling:
            outcome = await asyncio.to_thread(
                jobs.finalize, deps.db, deps.store, batch_id, deps.clock()
            )
        return outcome is not None

    async def _settle(self, batch_id: str) -> None:
        """A worker found no line left: end the batch now rather than at the next tick."""
        deps = self.deps
        async with self._settling:
            advanced = await asyncio.to_thread(jobs.advance, deps.db, batch_id, deps.clock())
        if advanced is not None:
            await self._finalize(batch_id)

    # ---- online traffic first ------------------------------------------------------------

    def notice_online(self, replica_id: str, outstanding: int) -> None:
        """The gateway's count of online requests on a replica changed (any thread)."""
        if outstanding == 0:
            # Noted even while no batch runs: a batch that starts later must know how
            # long ago the replica last served online traffic (lines are queued ahead
            # only long after it). While requests are outstanding ``slots`` sees them.
            self.slots.saw_online(replica_id)
        loop = self._loop
        if loop is None or not self._running_ids or outstanding > 1:
            # Nothing of ours to yield, or the replica was busy already (the first
            # online request preempted); ``slots`` reads the count when it needs it.
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: the runner is gone
            loop.call_soon_threadsafe(self._online_changed, replica_id, outstanding)

    def _online_changed(self, replica_id: str, outstanding: int) -> None:
        self.slots.online_changed(replica_id, outstanding)
        if outstanding > 0:
            for task in list(self._sending.get(replica_id, ())):
                self._preempt(task)

    def _hand_back_a_slot(self) -> None:
        """Health probes go to replicas unseen by the runner: where batch work has held
        every slot for long, its youngest request makes way and one slot stays free."""
        now = time.monotonic()
        for replica_id, tasks in list(self._sending.items()):
            if len(tasks) < self.slots.slots_per_replica:
                continue
            sent_at = {task: self._sent_at[task] for task in tasks}
            if now - min(sent_at.values()) < self.deps.limits.longest_full_hold_seconds:
                continue
            self.slots.hold_back(replica_id)
            self._preempt(max(sent_at, key=sent_at.__getitem__))

    def _preempt(self, task: asyncio.Task[tuple[LineResult, bool]]) -> None:
        if task not in self._preempted and task.cancel():
            self._preempted.add(task)
            self.preemptions += 1

    async def close(self) -> None:
        self._running_ids = set()
        tasks = [task for tasks in self._workers.values() for task in tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        await self._writer.close()
        # Lines this runner holds go back to the queue now rather than at lease expiry.
        for claimed in list(self._claimed.values()):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(jobs.release_line, self.deps.db, claimed)
        self._claimed.clear()
        if self._pool is not None:
            self._pool.close()
            self._pool = None

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
        while len(tasks) < self._worker_count():
            task = asyncio.get_running_loop().create_task(self._work(batch_id))
            tasks.add(task)
            task.add_done_callback(functools.partial(self._worker_done, batch_id, tasks))

    def _worker_count(self) -> int:
        """Workers per batch: one per request a replica may hold (its slots and the lines
        queued ahead), and as many again with a line claimed and ready, so a slot that
        frees never waits for a store write.

        More would only hold claimed lines while they wait (and cost store writes and
        wake-ups); the count grows at the next tick when replicas come up.
        """
        limits = self.deps.limits
        replicas = sum(
            len(deployment.replicas)
            for endpoint in self.deps.routes().endpoints
            for deployment in endpoint.deployments
        )
        per_replica = limits.slots_per_replica + limits.queue_ahead_per_replica
        return min(limits.max_inflight_per_batch, 2 * per_replica * max(1, replicas))

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
        claimed = await asyncio.to_thread(
            jobs.claim_line, deps.db, batch_id, deps.clock(), deps.limits.lease_seconds
        )
        while claimed is not None:
            self._claimed[claimed.token] = claimed
            result = await self._run_line(claimed)
            if result is None:
                await asyncio.to_thread(jobs.release_line, deps.db, claimed)
                del self._claimed[claimed.token]
                return
            following = await self._complete(claimed, result)
            del self._claimed[claimed.token]
            claimed = following
        if not any(line.batch_id == batch_id for line in self._claimed.values()):
            await self._settle(batch_id)  # the last line of the batch is done

    async def _complete(self, claimed: ClaimedLine, result: LineResult) -> ClaimedLine | None:
        """Store the result and, while the batch runs, claim the worker's next line."""
        claim_next = claimed.batch_id in self._running_ids
        return await self._writer.finish(claimed, result, claim_next=claim_next)

    async def _run_line(self, claimed: ClaimedLine) -> LineResult | None:
        """The line's result, or ``None`` when its batch stopped before it could run."""
        rejected = dispatch.check_line(claimed, self.deps.body_limits)
        if rejected is not None:
            return rejected
        attempts = 0
        while True:
            endpoint = await self._ready_endpoint(claimed)
            if endpoint is None or isinstance(endpoint, LineResult):
                return endpoint
            acquired = await self._acquire(claimed, endpoint)
            if acquired is None:
                return None
            sent = await self._send(claimed, endpoint, *acquired)
            if sent is None:
                continue  # preempted by online traffic: not an attempt
            result, retry = sent
            attempts += 1
            if not retry or attempts >= self.deps.limits.max_attempts:
                return result
            await dispatch.backoff(attempts)

    async def _send(
        self,
        claimed: ClaimedLine,
        endpoint: RouteEndpoint,
        deployment: RouteDeployment,
        replica: RouteReplica,
    ) -> tuple[LineResult, bool] | None:
        """The result and whether to retry, or ``None`` when online traffic preempted it."""
        started = time.perf_counter()
        request = asyncio.ensure_future(
            dispatch.send(
                self._upstream(),
                replica,
                claimed.url,
                dispatch.upstream_body(claimed, deployment),
                endpoint.request_timeout_seconds,
                f"req_batch_{claimed.token}",
            )
        )
        sending = self._sending.setdefault(replica.replica_id, set())
        sending.add(request)
        self._sent_at[request] = time.monotonic()
        try:
            result, retry = await request
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if request in self._preempted and not (current and current.cancelling()):
                return None
            raise
        finally:
            sending.discard(request)
            self._preempted.discard(request)
            self._sent_at.pop(request, None)
            if not sending:
                self._sending.pop(replica.replica_id, None)
            self.slots.release(replica)
        self._record(
            claimed, endpoint, deployment.deployment_id, replica.replica_id, result, started
        )
        return result, retry

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
            await self.slots.wait(self.deps.limits.idle_backoff_seconds)
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

    def _upstream(self) -> UpstreamPool:
        """The gateway's lean HTTP client, a pool of its own on the runner's loop."""
        if self._pool is None:
            self._pool = UpstreamPool()
        return self._pool

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
