"""An in-memory backend for control-plane tests: nothing runs, everything is steerable.

backend = FakeBackend()
backend.fail_next_start(Unavailable("no capacity"))
backend.mark_dead("r-1", exit_code=137)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime

from regolo.server.backends.placement import check_fits
from regolo.server.errors import RegoloError
from regolo.server.specs import Capacity, ObservedReplica, ReplicaHandle, ReplicaSpec


@dataclass
class FakeReplica:
    spec: ReplicaSpec
    handle: ReplicaHandle
    alive: bool = True
    exit_code: int | None = None
    cpu_cores_used: float = 0.0
    memory_bytes: int = 0
    log_lines: list[str] = field(default_factory=list)


class FakeBackend:
    name = "fake"

    def __init__(self, capacity: Capacity | None = None) -> None:
        self._capacity = capacity or Capacity(cpu_cores=8.0, memory_bytes=32 * 2**30)
        self.replicas: dict[str, FakeReplica] = {}
        self.started: list[str] = []  # replica ids, in start order
        self.stopped: list[tuple[str, float]] = []  # (replica id, drain seconds)
        self._start_failures: list[RegoloError] = []
        self._pids = itertools.count(10_000)

    # -- steering, for tests ------------------------------------------------
    def fail_next_start(self, error: RegoloError) -> None:
        self._start_failures.append(error)

    def mark_dead(self, replica_id: str, exit_code: int | None = 1) -> None:
        replica = self.replicas[replica_id]
        replica.alive = False
        replica.exit_code = exit_code

    def set_usage(self, replica_id: str, *, cpu_cores: float, memory_bytes: int) -> None:
        self.replicas[replica_id].cpu_cores_used = cpu_cores
        self.replicas[replica_id].memory_bytes = memory_bytes

    def forget(self, replica_id: str) -> None:
        """As if the control plane restarted and lost its in-memory state."""
        self.replicas.pop(replica_id, None)

    def running(self) -> list[str]:
        return [rid for rid, replica in self.replicas.items() if replica.alive]

    # -- ReplicaBackend -----------------------------------------------------
    def connect(self) -> None:
        """Nothing to join: replicas run on this machine."""

    def capacity(self) -> Capacity:
        return self._capacity

    async def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        if self._start_failures:
            raise self._start_failures.pop(0)
        taken = sum(r.spec.resources.gpu_count for r in self.replicas.values() if r.alive)
        check_fits(spec.resources, self._capacity, sum(self._capacity.gpus.values()) - taken)
        handle = ReplicaHandle(
            replica_id=spec.replica_id,
            backend=self.name,
            address=spec.external_url or f"http://fake-replica.invalid/{spec.replica_id}",
            pid=None if spec.runtime == "external" else next(self._pids),
            started_at=datetime.now(UTC),
        )
        self.replicas[spec.replica_id] = FakeReplica(
            spec=spec, handle=handle, log_lines=[f"started {spec.replica_id}"]
        )
        self.started.append(spec.replica_id)
        return handle

    async def stop(self, handle: ReplicaHandle, drain_seconds: float) -> None:
        self.stopped.append((handle.replica_id, drain_seconds))
        replica = self.replicas.get(handle.replica_id)
        if replica is not None and replica.alive:
            replica.alive = False
            replica.exit_code = 0
            replica.log_lines.append("stopped")

    async def observe(self, handles: list[ReplicaHandle]) -> list[ObservedReplica]:
        return [self._observe_one(handle) for handle in handles]

    def _observe_one(self, handle: ReplicaHandle) -> ObservedReplica:
        replica = self.replicas.get(handle.replica_id)
        if replica is None or replica.handle.pid != handle.pid:
            return ObservedReplica(handle=handle, alive=False)
        return ObservedReplica(
            handle=handle,
            alive=replica.alive,
            exit_code=replica.exit_code,
            cpu_cores_used=replica.cpu_cores_used if replica.alive else None,
            memory_bytes=replica.memory_bytes if replica.alive else None,
        )

    def logs(self, handle: ReplicaHandle, lines: int = 100) -> str:
        replica = self.replicas.get(handle.replica_id)
        return "\n".join(replica.log_lines[-lines:]) if replica and lines > 0 else ""

    def adopt(self, handle: ReplicaHandle) -> bool:
        replica = self.replicas.get(handle.replica_id)
        return replica is not None and replica.alive and replica.handle.pid == handle.pid
