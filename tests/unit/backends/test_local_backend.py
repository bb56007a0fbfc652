"""LocalBackend with a tiny stand-in replica (a Python HTTP server), no model needed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from regolo.server.backends import processes
from regolo.server.backends.local import LocalBackend
from regolo.server.backends.processes import tail
from regolo.server.errors import ValidationFailed
from regolo.server.specs import LaunchCommand, ModelArtifact, ReplicaHandle, ReplicaSpec, Resources

pytestmark = pytest.mark.timeout(60)

# Answers /health, prints its limits, and exits 0 on SIGTERM (or ignores it if told to).
STAND_IN = """
import os, signal, sys, resource, http.server, threading
if sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: (print("bye", flush=True), os._exit(0)))
print("cpus", sorted(os.sched_getaffinity(0)), "as", resource.getrlimit(resource.RLIMIT_AS)[0],
      "token", os.environ.get("STAND_IN_TOKEN"), flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


class StandInRuntime:
    name: ClassVar[str] = "stand-in"

    def __init__(self, mode: str = "normal") -> None:
        self.mode = mode

    def available(self) -> bool:
        return True

    def supports(self, artifact: ModelArtifact, resources: Resources) -> bool:
        return True

    def launch_command(self, spec: ReplicaSpec, host: str, port: int) -> LaunchCommand:
        return LaunchCommand(
            argv=(sys.executable, "-c", STAND_IN, str(port), self.mode),
            env=(("STAND_IN_TOKEN", spec.auth_token),),
        )


def _spec(replica_id: str, runtime: str = "stand-in", **changes: object) -> ReplicaSpec:
    fields: dict[str, object] = {
        "replica_id": replica_id,
        "deployment_id": "d-1",
        "runtime": runtime,
        "artifact": ModelArtifact(path="/m/a.gguf", format="gguf"),
        "auth_token": "tok",
    }
    fields.update(changes)
    return ReplicaSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture()
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    runtimes = {"stand-in": StandInRuntime(), "stubborn": StandInRuntime("ignore-term")}
    local = LocalBackend(tmp_path, runtimes=lambda name: runtimes[name])
    yield local
    asyncio.run(local.close())


def _wait_http(address: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(address, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("stand-in never answered")


def test_start_applies_limits_and_logs(backend: LocalBackend) -> None:
    resources = Resources(cpu_limit=1, memory_limit_bytes=4 * 2**30)
    handle = asyncio.run(backend.start(_spec("r-1", resources=resources)))
    _wait_http(handle.address)
    log = backend.logs(handle)
    assert "cpus [" in log and f"as {4 * 2**30}" in log and "token tok" in log
    assert len(log.split("cpus [")[1].split("]")[0].split(",")) == 1
    assert handle.log_path == str(backend.home / "logs" / "replicas" / "r-1.log")
    observed = asyncio.run(backend.observe([handle]))[0]
    assert observed.alive and observed.exit_code is None


def test_stop_sends_sigterm_first(backend: LocalBackend) -> None:
    handle = asyncio.run(backend.start(_spec("r-1")))
    _wait_http(handle.address)
    asyncio.run(backend.stop(handle, drain_seconds=5))
    observed = asyncio.run(backend.observe([handle]))[0]
    assert not observed.alive
    assert "bye" in backend.logs(handle)


def test_stop_kills_what_ignores_sigterm(backend: LocalBackend) -> None:
    handle = asyncio.run(backend.start(_spec("r-1", runtime="stubborn")))
    _wait_http(handle.address)
    asyncio.run(backend.stop(handle, drain_seconds=0))
    assert handle.pid is not None and not Path(f"/proc/{handle.pid}").exists()


def test_duplicate_and_unfit_starts_are_refused(backend: LocalBackend) -> None:
    asyncio.run(backend.start(_spec("r-1")))
    with pytest.raises(ValidationFailed, match="already runs"):
        asyncio.run(backend.start(_spec("r-1")))
    if not backend.capacity().gpus:
        with pytest.raises(ValidationFailed, match="GPU"):
            asyncio.run(backend.start(_spec("r-2", resources=Resources(gpu_count=1))))
    with pytest.raises(ValidationFailed):
        asyncio.run(backend.start(_spec("../evil")))


def test_adopt_after_restart(backend: LocalBackend, tmp_path: Path) -> None:
    handle = asyncio.run(backend.start(_spec("r-1")))
    restarted = LocalBackend(tmp_path, runtimes=lambda name: StandInRuntime())
    assert restarted.adopt(handle)
    other = ReplicaHandle(replica_id="r-2", backend="local", address="", pid=handle.pid)
    assert not restarted.adopt(other)  # the pid runs, but not replica r-2
    asyncio.run(restarted.stop(handle, drain_seconds=1))
    assert not restarted.adopt(handle)


def test_capacity(backend: LocalBackend) -> None:
    capacity = backend.capacity()
    assert capacity.cpu_cores >= 1 and capacity.memory_bytes > 0
    assert capacity.unenforced


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_external_replica_is_observed_over_http(backend: LocalBackend) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        handle = asyncio.run(backend.start(_spec("r-ext", runtime="external", external_url=url)))
        assert handle.pid is None and handle.address == url.removesuffix("/v1")
        assert backend.adopt(handle)
        assert asyncio.run(backend.observe([handle]))[0].alive
    finally:
        server.shutdown()
        server.server_close()
    assert not asyncio.run(backend.observe([handle]))[0].alive


def test_tail(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("".join(f"line {n}\n" for n in range(5000)))
    assert tail(path, 2) == "line 4998\nline 4999"
    assert tail(path, 0) == "" and tail(tmp_path / "missing", 5) == ""


def test_a_replica_in_between_is_waited_for_not_called_dead(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither recognisable nor reaped: a killed replica whose threads still exit (a
    zombie to the OS), or one not yet through exec. One observation settles it."""
    handle = asyncio.run(backend.start(_spec("r-between")))
    _wait_http(handle.address)
    recognised = iter([False, False, True])  # not yet exec'd, twice, then our replica
    monkeypatch.setattr(processes, "is_our_replica", lambda pid, rid: next(recognised, True))
    observed = asyncio.run(backend.observe([handle]))[0]
    assert observed.alive and observed.exit_code is None

    monkeypatch.setattr(processes, "is_our_replica", lambda pid, rid: False)  # a zombie
    assert handle.pid is not None
    os.kill(handle.pid, signal.SIGKILL)
    observed = asyncio.run(backend.observe([handle]))[0]
    assert not observed.alive and observed.exit_code == -signal.SIGKILL
