"""Replicas as Ray actors on a Ray cluster, placed by Ray across its nodes.

Each replica is a detached, named actor (name = replica id, in one namespace) that
reserves the replica's resources (CPUs, GPUs, memory, ``accelerator:<name>``) and runs
the runtime's server on its node (``ray_actor.ReplicaActor``). Detached and named, so a
restarted control plane finds it again with ``ray.get_actor``. Every call into Ray sits
in this module; the decisions are pure functions in ``ray_resources``.

    backend = RayBackend(settings)            # REGOLO_RAY_ADDRESS, or a local Ray
    handle = await backend.start(spec)        # Unavailable when no node can host it
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from regolo.server.backends import placement, processes
from regolo.server.backends.local import LocalBackend
from regolo.server.backends.ray_actor import ReplicaActor, ReplicaLaunch, ReplicaStatus
from regolo.server.backends.ray_resources import (
    RayDemand,
    capacity_of,
    check_feasible,
    check_free,
    demand_of,
)
from regolo.server.errors import RegoloError, Unavailable, ValidationFailed
from regolo.server.runtimes.base import Runtime
from regolo.server.runtimes.external import ExternalRuntime
from regolo.server.runtimes.registry import get_runtime
from regolo.server.settings import Settings
from regolo.server.specs import Capacity, ObservedReplica, ReplicaHandle, ReplicaSpec

log = logging.getLogger("regolo.backends.ray")

NAMESPACE = "regolo"
READY_TIMEOUT_SECONDS = 30.0  # actor placed, worker started, server process launched
CALL_TIMEOUT_SECONDS = 5.0  # status and log calls to a live actor
_STOP_GRACE_SECONDS = 15.0  # beyond the drain: SIGTERM grace, SIGKILL, actor round trip
_RemoteReplicaActor: Any = ray.remote(ReplicaActor)


class RayBackend:
    name = "ray"

    def __init__(
        self,
        settings: Settings,
        *,
        runtimes: Callable[[str], Runtime] = get_runtime,
        namespace: str = NAMESPACE,
        ready_timeout_seconds: float = READY_TIMEOUT_SECONDS,
        loopback_on_local_node: bool = True,
    ) -> None:
        self.address = settings.ray_address
        self.namespace = namespace
        self.ready_timeout_seconds = ready_timeout_seconds
        self.log_dir = settings.home / "logs" / "replicas"
        self._runtimes = runtimes
        self._loopback_on_local_node = loopback_on_local_node
        self._external = LocalBackend(settings.home)  # external replicas launch nothing
        self._actors: dict[str, Any] = {}  # replica id -> actor handle
        self._connect_lock = threading.Lock()
        self._control_plane_ip: str | None = None

    # ---- connection ---------------------------------------------------------------

    def connect(self) -> None:
        """Join the cluster at ``REGOLO_RAY_ADDRESS`` (or start a local Ray); idempotent."""
        with self._connect_lock:
            if not ray.is_initialized():
                try:
                    ray.init(
                        address=self.address,
                        namespace=self.namespace,
                        log_to_driver=False,
                        ignore_reinit_error=True,
                    )
                except (ConnectionError, RuntimeError) as exc:
                    log.warning("cannot reach the Ray cluster: %s", exc)
                    raise Unavailable(
                        "cannot reach the Ray cluster; see the control plane's log",
                        retry_after_seconds=10,
                    ) from exc
            if self._control_plane_ip is None and self._loopback_on_local_node:
                self._control_plane_ip = ray.util.get_node_ip_address()

    # ---- ReplicaBackend -----------------------------------------------------------

    def capacity(self) -> Capacity:
        self.connect()
        try:
            totals = ray.cluster_resources()
        except (RayError, ConnectionError, RuntimeError) as exc:
            log.warning("the Ray cluster did not answer: %s", exc)
            raise Unavailable("the Ray cluster did not answer", retry_after_seconds=10) from exc
        return capacity_of(totals)

    async def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        placement.check_replica_id(spec.replica_id)
        if spec.runtime == ExternalRuntime.name:
            handle = await self._external.start(spec)
            return dataclasses.replace(handle, backend=self.name)
        return await asyncio.to_thread(self._start, spec)

    def _start(self, spec: ReplicaSpec) -> ReplicaHandle:
        self.connect()
        demand = demand_of(spec.resources)
        check_feasible(demand, _live_node_resources())
        check_free(demand, ray.available_resources())
        actor = self._create_actor(spec, demand)
        try:
            launch = self._await_launch(actor, spec, demand)
        except BaseException:
            _kill(actor)
            raise
        self._actors[spec.replica_id] = actor
        log.info(
            "replica %s runs on node %s at %s", spec.replica_id, launch.node_id, launch.address
        )
        return ReplicaHandle(
            replica_id=spec.replica_id,
            backend=self.name,
            address=launch.address,
            pid=launch.pid,
            log_path=launch.log_path,
            started_at=datetime.now(UTC),
            node=launch.node_id,
        )

    def _create_actor(self, spec: ReplicaSpec, demand: RayDemand) -> Any:
        options: dict[str, Any] = {
            "name": spec.replica_id,
            "namespace": self.namespace,
            "lifetime": "detached",  # outlives this control plane, which re-adopts it
            "max_restarts": 0,  # a lost replica is replaced by the reconciler, not revived
            "max_concurrency": 4,  # status and logs answer while a stop drains
            "scheduling_strategy": "SPREAD",  # replicas of one endpoint on different nodes
            "num_cpus": demand.num_cpus,
            "num_gpus": demand.num_gpus,
            "resources": demand.custom,
        }
        if demand.memory_bytes:
            options["memory"] = demand.memory_bytes
        try:
            return _RemoteReplicaActor.options(**options).remote(
                spec, self._runtimes, str(self.log_dir), self._control_plane_ip
            )
        except ValueError as exc:  # the name is taken: that replica runs already
            raise ValidationFailed(
                f"replica {spec.replica_id} already runs", param="replica_id"
            ) from exc

    def _await_launch(self, actor: Any, spec: ReplicaSpec, demand: RayDemand) -> ReplicaLaunch:
        try:
            launch: ReplicaLaunch = ray.get(
                actor.launch.remote(), timeout=self.ready_timeout_seconds
            )
        except GetTimeoutError:
            raise Unavailable(
                f"no Ray node could host replica {spec.replica_id} "
                f"({_describe(demand)}) within {self.ready_timeout_seconds:g} s",
                retry_after_seconds=15,
            ) from None
        except RayTaskError as exc:
            raise _translate(exc) from None
        except RayActorError as exc:
            log.warning("the actor of replica %s died while starting: %s", spec.replica_id, exc)
            raise Unavailable(
                f"the actor of replica {spec.replica_id} died while starting "
                "(its node was lost, or see the control plane's log)",
                retry_after_seconds=5,
            ) from None
        return launch

    async def stop(self, handle: ReplicaHandle, drain_seconds: float) -> None:
        if handle.pid is None:
            return
        await asyncio.to_thread(self._stop, handle, drain_seconds)

    def _stop(self, handle: ReplicaHandle, drain_seconds: float) -> None:
        self.connect()
        actor = self._actor(handle.replica_id)
        if actor is None:
            return  # gone already: stopping is idempotent
        try:
            ray.get(
                actor.stop.remote(drain_seconds),
                timeout=max(0.0, drain_seconds) + _STOP_GRACE_SECONDS,
            )
        except (RayError, GetTimeoutError):
            log.warning("replica %s did not stop cleanly; killing its actor", handle.replica_id)
        # Killing the actor frees its reservation; the parent guard ends any leftover.
        _kill(actor)
        self._actors.pop(handle.replica_id, None)

    async def observe(self, handles: list[ReplicaHandle]) -> list[ObservedReplica]:
        ray_handles = [h for h in handles if h.pid is not None]
        external = [h for h in handles if h.pid is None]
        on_ray = await asyncio.to_thread(self._observe, ray_handles) if ray_handles else []
        outside = await self._external.observe(external) if external else []
        by_id = {o.handle.replica_id: o for o in [*on_ray, *outside]}
        return [by_id[h.replica_id] for h in handles]

    def _observe(self, handles: list[ReplicaHandle]) -> list[ObservedReplica]:
        self.connect()
        live_nodes = _live_node_ids()
        calls: dict[str, Any] = {}
        for handle in handles:
            actor = self._actor(handle.replica_id) if handle.node in live_nodes else None
            if actor is not None:
                calls[handle.replica_id] = actor.status.remote()
        statuses = _gather(calls, CALL_TIMEOUT_SECONDS)
        return [_observed(handle, handle.replica_id in calls, statuses) for handle in handles]

    def logs(self, handle: ReplicaHandle, lines: int = 100) -> str:
        placement.check_replica_id(handle.replica_id)
        if handle.pid is not None:
            self.connect()
            actor = self._actor(handle.replica_id)
            if actor is not None:
                try:
                    text: str = ray.get(actor.logs.remote(lines), timeout=CALL_TIMEOUT_SECONDS)
                    return text
                except (RayError, GetTimeoutError):
                    pass
        # The actor is gone; its log is still readable when its node was this machine.
        return processes.tail(Path(handle.log_path), lines) if handle.log_path else ""

    def adopt(self, handle: ReplicaHandle) -> bool:
        if handle.pid is None:
            return True  # an external server: observe() probes it
        self.connect()
        actor = self._actor(handle.replica_id)
        if actor is None:
            return False
        statuses = _gather({handle.replica_id: actor.status.remote()}, CALL_TIMEOUT_SECONDS)
        status = statuses.get(handle.replica_id)
        if isinstance(status, RayError):
            return False
        if not isinstance(status, ReplicaStatus):
            return True  # too busy to answer: the health checker will judge
        if status.pid != handle.pid:
            return False  # not the process this handle recorded
        if not status.alive:
            # The actor outlived its process: free what it reserves.
            _kill(actor)
            self._actors.pop(handle.replica_id, None)
        return status.alive

    async def close(self) -> None:
        """Stop every replica this backend started or adopted (tests)."""
        for replica_id in list(self._actors):
            handle = ReplicaHandle(replica_id=replica_id, backend=self.name, address="", pid=0)
            await self.stop(handle, drain_seconds=0.0)

    # ---- helpers ------------------------------------------------------------------

    def _actor(self, replica_id: str) -> Any | None:
        """This replica's actor handle, looked up by name after a restart; None if dead."""
        actor = self._actors.get(replica_id)
        if actor is not None:
            return actor
        try:
            actor = ray.get_actor(replica_id, namespace=self.namespace)
        except ValueError:
            return None
        self._actors[replica_id] = actor
        return actor


_UNANSWERED = object()


def _gather(calls: dict[str, Any], timeout_seconds: float) -> dict[str, Any]:
    """Results of actor calls by replica id: a ReplicaStatus, a RayError, or _UNANSWERED."""
    if not calls:
        return {}
    ready, _ = ray.wait(list(calls.values()), num_returns=len(calls), timeout=timeout_seconds)
    done = set(ready)
    results: dict[str, Any] = {}
    for replica_id, ref in calls.items():
        if ref not in done:
            results[replica_id] = _UNANSWERED
            continue
        try:
            results[replica_id] = ray.get(ref)
        except RayError as exc:
            results[replica_id] = exc
    return results


def _observed(handle: ReplicaHandle, asked: bool, statuses: dict[str, Any]) -> ObservedReplica:
    if not asked:  # its node is dead, or its actor is
        return ObservedReplica(handle=handle, alive=False)
    status = statuses.get(handle.replica_id)
    if status is _UNANSWERED:
        # A busy node is not a dead one: the health checker's probe decides.
        return ObservedReplica(handle=handle, alive=True)
    if not isinstance(status, ReplicaStatus) or status.pid != handle.pid:
        return ObservedReplica(handle=handle, alive=False)
    return ObservedReplica(
        handle=handle,
        alive=status.alive,
        exit_code=status.exit_code,
        cpu_cores_used=status.cpu_cores_used,
        memory_bytes=status.memory_bytes,
    )


def _live_node_resources() -> list[dict[str, float]]:
    return [dict(node.get("Resources") or {}) for node in ray.nodes() if node.get("Alive")]


def _live_node_ids() -> set[str]:
    return {str(node["NodeID"]) for node in ray.nodes() if node.get("Alive")}


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except (RayError, ValueError):
        pass  # dead already


def _translate(error: RayTaskError) -> Exception:
    """The actor's refusal (a RegoloError raised on the node) as is; anything else is a
    failed start, which the reconciler counts against the deployment."""
    cause = error.cause
    if isinstance(cause, RegoloError):
        return cause
    # Details (paths, hosts) go to the log, not into the endpoint's status reason.
    log.warning("a replica failed to start on its node: %s", error)
    return RuntimeError(f"the replica failed to start on its node ({type(cause).__name__})")


def _describe(demand: RayDemand) -> str:
    return ", ".join(f"{key}={amount:g}" for key, amount in sorted(demand.as_resources().items()))
