"""Replicas as child processes of this machine, one loopback port and log file each.

Each replica leads its own process group (so a stop reaches its workers too), writes
to ``$home/logs/replicas/<replica_id>.log``, and runs with CPU affinity and an
address-space limit when its resources ask for them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from regolo.server.backends import placement, processes
from regolo.server.backends.environment import replica_environment
from regolo.server.backends.gpus import detect_gpus
from regolo.server.backends.launcher import launcher_argv
from regolo.server.errors import ValidationFailed
from regolo.server.runtimes.base import Runtime
from regolo.server.runtimes.external import ExternalRuntime, external_address
from regolo.server.runtimes.registry import get_runtime
from regolo.server.specs import (
    Capacity,
    ObservedReplica,
    ReplicaHandle,
    ReplicaSpec,
    Resources,
)

KILL_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.05
_PROBE_TIMEOUT_SECONDS = 2.0
UNENFORCED = (
    "cpu_limit is rounded up to whole cores (CPU affinity), not a CPU quota",
    "memory_limit_bytes caps virtual address space (RLIMIT_AS), not resident memory",
    "cpu_request and memory_request_bytes are checked against the machine, not reserved",
)


@dataclass
class _Replica:
    """What this backend holds for a replica it started or adopted."""

    pid: int
    process: psutil.Process
    child: subprocess.Popen[bytes] | None  # None when adopted after a restart
    cores: tuple[int, ...]
    gpus: tuple[int, ...]


class LocalBackend:
    name = "local"

    def __init__(
        self,
        home: Path,
        host: str = "127.0.0.1",
        runtimes: Callable[[str], Runtime] = get_runtime,
    ) -> None:
        self.home = home
        self.host = host
        self._runtimes = runtimes
        self.log_dir = home / "logs" / "replicas"
        self._replicas: dict[str, _Replica] = {}

    def connect(self) -> None:
        """Nothing to join: replicas run on this machine."""

    def capacity(self) -> Capacity:
        return Capacity(
            cpu_cores=float(len(os.sched_getaffinity(0))),
            memory_bytes=psutil.virtual_memory().total,
            gpus=detect_gpus(),
            unenforced=UNENFORCED,
        )

    async def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        placement.check_replica_id(spec.replica_id)
        if spec.runtime == ExternalRuntime.name:
            return self._external_handle(spec)
        if spec.replica_id in self._replicas:
            raise ValidationFailed(f"replica {spec.replica_id} already runs", param="replica_id")
        runtime = _usable_runtime(self._runtimes(spec.runtime), spec)
        placement.check_fits(spec.resources, self.capacity(), self._free_gpus())
        return self._spawn(spec, runtime)

    def _external_handle(self, spec: ReplicaSpec) -> ReplicaHandle:
        return ReplicaHandle(
            replica_id=spec.replica_id,
            backend=self.name,
            address=external_address(spec),
            started_at=datetime.now(UTC),
        )

    def _spawn(self, spec: ReplicaSpec, runtime: Runtime) -> ReplicaHandle:
        port = free_port(self.host)
        command = runtime.launch_command(spec, self.host, port)
        cores = self._pick_cores(spec.resources)
        gpus = self._pick_gpus(spec.resources)
        argv = launcher_argv(
            cores if spec.resources.cpu_limit is not None else None,
            spec.resources.memory_limit_bytes,
            command.argv,
        )
        env = replica_environment(os.environ, command.env, spec.replica_id, gpus)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.replica_id}.log"
        with log_path.open("ab") as log:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.home,
                start_new_session=True,
            )
        self._replicas[spec.replica_id] = _Replica(
            child.pid, psutil.Process(child.pid), child, cores, gpus or ()
        )
        return ReplicaHandle(
            replica_id=spec.replica_id,
            backend=self.name,
            address=f"http://{_url_host(self.host)}:{port}",
            pid=child.pid,
            log_path=str(log_path),
            started_at=datetime.now(UTC),
            node=socket.gethostname(),
        )

    def _pick_cores(self, resources: Resources) -> tuple[int, ...]:
        load: dict[int, int] = {}
        for replica in self._replicas.values():
            for core in replica.cores:
                load[core] = load.get(core, 0) + 1
        return placement.pick_cores(resources.cpu_limit, sorted(os.sched_getaffinity(0)), load)

    def _pick_gpus(self, resources: Resources) -> tuple[int, ...] | None:
        total = sum(detect_gpus().values())
        if total == 0:
            return None
        taken = {gpu for replica in self._replicas.values() for gpu in replica.gpus}
        # A CPU replica on a GPU machine sees no GPU rather than grabbing one.
        return placement.pick_gpus(resources.gpu_count, total, taken)

    def _free_gpus(self) -> int:
        taken = sum(len(replica.gpus) for replica in self._replicas.values())
        return sum(detect_gpus().values()) - taken

    async def stop(self, handle: ReplicaHandle, drain_seconds: float) -> None:
        if handle.pid is None:
            return
        replica = self._replicas.get(handle.replica_id)
        if replica is None:
            if not self.adopt(handle):
                return  # gone already, or a stranger's pid: never signal it
            replica = self._replicas[handle.replica_id]
        processes.signal_group(replica.pid, signal.SIGTERM)
        await _wait_exit(replica, max(0.0, drain_seconds) + KILL_GRACE_SECONDS)
        # Also reaches workers the replica left behind after its leader exited.
        processes.signal_group(replica.pid, signal.SIGKILL)
        await _wait_exit(replica, KILL_GRACE_SECONDS)
        self._replicas.pop(handle.replica_id, None)

    async def observe(self, handles: list[ReplicaHandle]) -> list[ObservedReplica]:
        return list(await asyncio.gather(*(self._observe_one(handle) for handle in handles)))

    async def _observe_one(self, handle: ReplicaHandle) -> ObservedReplica:
        if handle.pid is None:
            return ObservedReplica(handle=handle, alive=await _answers_http(handle.address))
        replica = self._replicas.get(handle.replica_id)
        if replica is None or replica.pid != handle.pid:
            return ObservedReplica(handle=handle, alive=False)
        # Ask the OS first: a child that died in between is then reaped with its exit code.
        ours = processes.is_our_replica(replica.pid, handle.replica_id)
        exit_code = _exit_code(replica)
        if not ours and exit_code is None and replica.child is not None:
            ours, exit_code = await _settle(replica, handle.replica_id)
        if exit_code is not None or not ours:
            return ObservedReplica(handle=handle, alive=False, exit_code=exit_code)
        return ObservedReplica(
            handle=handle,
            alive=True,
            cpu_cores_used=processes.cpu_cores_used(replica.process),
            memory_bytes=processes.tree_memory_bytes(replica.process),
        )

    def logs(self, handle: ReplicaHandle, lines: int = 100) -> str:
        placement.check_replica_id(handle.replica_id)
        return processes.tail(self.log_dir / f"{handle.replica_id}.log", lines)

    def adopt(self, handle: ReplicaHandle) -> bool:
        if handle.pid is None:
            return True  # an external server: observe() probes it
        known = self._replicas.get(handle.replica_id)
        if known is not None and known.pid == handle.pid:
            return _exit_code(known) is None
        if not processes.is_our_replica(handle.pid, handle.replica_id):
            return False
        process = psutil.Process(handle.pid)
        self._replicas[handle.replica_id] = _Replica(
            handle.pid, process, None, _affinity(process), _visible_gpus(process)
        )
        return True

    async def close(self) -> None:
        """Stop every replica this backend holds (tests, and ``regolo serve`` on exit)."""
        for replica_id, replica in list(self._replicas.items()):
            handle = ReplicaHandle(
                replica_id=replica_id, backend=self.name, address="", pid=replica.pid
            )
            await self.stop(handle, drain_seconds=0.0)


def _usable_runtime(runtime: Runtime, spec: ReplicaSpec) -> Runtime:
    if not runtime.available():
        raise ValidationFailed(
            f"runtime {spec.runtime!r} is not available on this machine", param="runtime"
        )
    if not runtime.supports(spec.artifact, spec.resources):
        raise ValidationFailed(
            f"runtime {spec.runtime!r} cannot serve a {spec.artifact.format} "
            f"{spec.artifact.task} model with {spec.resources.gpu_count} GPU(s)",
            param="runtime",
        )
    return runtime


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


_REAP_SECONDS = 5.0


async def _settle(replica: _Replica, replica_id: str) -> tuple[bool, int | None]:
    """A child of ours that is neither recognisable nor reaped is in between: killed
    and a zombie while its other threads still exit (a llama.cpp replica has dozens),
    or not yet through ``exec``. Wait, briefly, for either to end."""
    deadline = time.monotonic() + _REAP_SECONDS
    while time.monotonic() < deadline:
        await asyncio.sleep(_POLL_SECONDS)
        exit_code = _exit_code(replica)
        if exit_code is not None:
            return False, exit_code
        if processes.is_our_replica(replica.pid, replica_id):
            return True, None
    return False, None


def _exit_code(replica: _Replica) -> int | None:
    if replica.child is not None:
        return replica.child.poll()
    return None


async def _wait_exit(replica: _Replica, timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if replica.child is not None:
            if replica.child.poll() is not None:
                return True
        elif not psutil.pid_exists(replica.pid) or _is_zombie(replica.process):
            return True
        await asyncio.sleep(_POLL_SECONDS)
    return False


def _is_zombie(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _affinity(process: psutil.Process) -> tuple[int, ...]:
    try:
        return tuple(process.cpu_affinity() or ())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ()


def _visible_gpus(process: psutil.Process) -> tuple[int, ...]:
    try:
        visible = process.environ().get("CUDA_VISIBLE_DEVICES", "")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ()
    return tuple(int(part) for part in visible.split(",") if part.strip().isdigit())


async def _answers_http(address: str) -> bool:
    """An external server is alive if it answers at all below 500 (401 included)."""
    try:
        async with httpx.AsyncClient(timeout=_PROBE_TIMEOUT_SECONDS) as client:
            response = await client.get(f"{address}/health")
    except httpx.HTTPError:
        return False
    return response.status_code < 500
