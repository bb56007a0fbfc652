"""A fake backend whose replicas really serve HTTP: one FakeOpenAIServer per replica.

The control plane, health checker and gateway treat these exactly like real replicas,
but they start in milliseconds and answer ``hello from <deployment_id>/<replica_id>``,
so tests can tell which deployment (version) served a request, kill a replica, and
check that a stopped replica had no request in flight.
"""

from __future__ import annotations

import dataclasses

from regolo.server.backends.fake import FakeBackend
from regolo.server.errors import Unavailable
from regolo.server.specs import ReplicaHandle, ReplicaSpec
from tests.support.fake_openai_server import Behaviour, FakeOpenAIServer


class ServingFakeBackend(FakeBackend):
    def __init__(self, delay_seconds: float = 0.0) -> None:
        super().__init__()
        self.delay_seconds = delay_seconds  # how long each answer takes
        self.busy_at_stop: dict[str, int] = {}  # replica id -> requests in flight when stopped
        self.servers: dict[str, FakeOpenAIServer] = {}
        self.deployment_of: dict[str, str] = {}  # replica id -> deployment id
        self.refused_deployments: set[str] = set()  # starts refused as if out of capacity

    async def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        if spec.deployment_id in self.refused_deployments:
            raise Unavailable("refused by the test", retry_after_seconds=1)
        handle = await super().start(spec)
        server = FakeOpenAIServer(f"{spec.deployment_id}/{spec.replica_id}", record_bodies=False)
        if self.delay_seconds:
            server.behaviour = Behaviour(mode="slow", delay_seconds=self.delay_seconds)
        server.start()
        self.servers[spec.replica_id] = server
        self.deployment_of[spec.replica_id] = spec.deployment_id
        handle = dataclasses.replace(handle, address=server.address)
        self.replicas[spec.replica_id].handle = handle
        return handle

    async def stop(self, handle: ReplicaHandle, drain_seconds: float) -> None:
        await super().stop(handle, drain_seconds)
        server = self.servers.get(handle.replica_id)
        if server is not None:
            self.busy_at_stop[handle.replica_id] = sum(c.busy for c in list(server.connections))
            server.stop()

    def kill(self, replica_id: str) -> None:
        """Like SIGKILL: the process is gone and its port closes with open connections."""
        self.servers[replica_id].stop()
        self.mark_dead(replica_id, exit_code=137)

    def live_replicas(self, deployment_id: str) -> list[str]:
        return [rid for rid in self.running() if self.deployment_of.get(rid) == deployment_id]

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()
