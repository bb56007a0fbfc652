"""The ReplicaBackend interface: the only code that starts or stops replicas.

A backend turns a ``ReplicaSpec`` into a running OpenAI-compatible server and reports
what it observes; it decides nothing. The reconciler calls it and stores the handles,
so after a control-plane restart ``adopt`` can tell which recorded replicas still run.
"""

from __future__ import annotations

from typing import Protocol

from regolo.server.specs import Capacity, ObservedReplica, ReplicaHandle, ReplicaSpec


class ReplicaBackend(Protocol):
    name: str

    def connect(self) -> None:
        """Join what the backend runs on (a cluster) once, before the control loops start;
        a no-op where there is nothing to join."""
        ...

    def capacity(self) -> Capacity:
        """What this backend can host in total (not what is free)."""
        ...

    async def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        """Launch the replica and return at once; readiness is the health checker's call.

        Raises ``ValidationFailed`` for what can never fit here (GPUs on a CPU machine, an
        unavailable runtime) and ``Unavailable`` for what does not fit right now.
        """
        ...

    async def stop(self, handle: ReplicaHandle, drain_seconds: float) -> None:
        """Ask the replica to finish its requests and exit; kill it after ``drain_seconds``.

        Idempotent: stopping a stopped or unknown replica is not an error.
        """
        ...

    async def observe(self, handles: list[ReplicaHandle]) -> list[ObservedReplica]:
        """Liveness and resource use of each handle, in the same order."""
        ...

    def logs(self, handle: ReplicaHandle, lines: int = 100) -> str:
        """The last ``lines`` lines the replica wrote ("" when there is no log)."""
        ...

    def adopt(self, handle: ReplicaHandle) -> bool:
        """Whether a recorded replica is still alive and still ours (not a reused pid)."""
        ...
