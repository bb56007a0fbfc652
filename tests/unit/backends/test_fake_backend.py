from __future__ import annotations

import asyncio

import pytest

from regolo.server.backends.fake import FakeBackend
from regolo.server.errors import Unavailable, ValidationFailed
from regolo.server.specs import ModelArtifact, ReplicaSpec, Resources


def _spec(replica_id: str, **changes: object) -> ReplicaSpec:
    fields: dict[str, object] = {
        "replica_id": replica_id,
        "deployment_id": "d-1",
        "runtime": "llamacpp",
        "artifact": ModelArtifact(path="/m/a.gguf", format="gguf"),
    }
    fields.update(changes)
    return ReplicaSpec(**fields)  # type: ignore[arg-type]


def test_start_observe_stop() -> None:
    backend = FakeBackend()
    handle = asyncio.run(backend.start(_spec("r-1")))
    assert backend.started == ["r-1"] and backend.running() == ["r-1"]
    assert asyncio.run(backend.observe([handle]))[0].alive
    assert backend.adopt(handle)
    asyncio.run(backend.stop(handle, drain_seconds=3))
    observed = asyncio.run(backend.observe([handle]))[0]
    assert not observed.alive and observed.exit_code == 0
    assert backend.stopped == [("r-1", 3)]
    assert "stopped" in backend.logs(handle)


def test_fail_next_start_once() -> None:
    backend = FakeBackend()
    backend.fail_next_start(Unavailable("busy"))
    with pytest.raises(Unavailable):
        asyncio.run(backend.start(_spec("r-1")))
    asyncio.run(backend.start(_spec("r-1")))
    assert backend.started == ["r-1"]


def test_mark_dead_and_forget() -> None:
    backend = FakeBackend()
    handle = asyncio.run(backend.start(_spec("r-1")))
    backend.set_usage("r-1", cpu_cores=0.5, memory_bytes=1024)
    assert asyncio.run(backend.observe([handle]))[0].memory_bytes == 1024
    backend.mark_dead("r-1", exit_code=137)
    observed = asyncio.run(backend.observe([handle]))[0]
    assert (observed.alive, observed.exit_code) == (False, 137)
    assert not backend.adopt(handle)
    backend.forget("r-1")
    assert not asyncio.run(backend.observe([handle]))[0].alive


def test_capacity_is_enforced() -> None:
    with pytest.raises(ValidationFailed):
        asyncio.run(FakeBackend().start(_spec("r-1", resources=Resources(gpu_count=1))))


def test_external_replica_has_no_pid() -> None:
    spec = _spec("r-1", runtime="external", external_url="http://10.0.0.1:8000")
    handle = asyncio.run(FakeBackend().start(spec))
    assert handle.pid is None and handle.address == "http://10.0.0.1:8000"
