"""The Ray actor that owns one replica process on its node.

The actor reserves the replica's resources on a node Ray picked, resolves the runtime
there (the node's Python and packages count, not the control plane's), starts the
runtime's server as its child under ``parent_guard`` and reports its address. It stays
alive as long as the replica, so the control plane can ask it for liveness, usage and
logs, and tell it to stop. It is a plain class; ``ray.py`` makes it remote.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import ray

from regolo.server.backends import processes
from regolo.server.backends.environment import replica_environment
from regolo.server.backends.launcher import launcher_argv
from regolo.server.backends.local import _usable_runtime, free_port
from regolo.server.backends.parent_guard import guarded_argv
from regolo.server.runtimes.base import Runtime
from regolo.server.specs import ReplicaSpec

KILL_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.1
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class ReplicaLaunch:
    address: str
    pid: int
    log_path: str
    node_id: str


@dataclass(frozen=True, kw_only=True)
class ReplicaStatus:
    pid: int | None
    alive: bool
    exit_code: int | None = None
    cpu_cores_used: float | None = None
    memory_bytes: int | None = None


def bind_host(node_ip: str, control_plane_ip: str | None) -> str:
    """Loopback when the replica shares the control plane's machine, else the node's IP."""
    return LOOPBACK if control_plane_ip is not None and node_ip == control_plane_ip else node_ip


class ReplicaActor:
    def __init__(
        self,
        spec: ReplicaSpec,
        runtimes: Callable[[str], Runtime],
        log_dir: str,
        control_plane_ip: str | None,
    ) -> None:
        self.spec = spec
        self._runtimes = runtimes
        self._log_dir = log_dir
        self._control_plane_ip = control_plane_ip
        self._child: subprocess.Popen[bytes] | None = None
        self._process: psutil.Process | None = None
        self._log_path: Path | None = None
        self._address = ""

    def launch(self) -> ReplicaLaunch:
        """Start the runtime's server (once); raises the runtime's refusal as is."""
        spec = self.spec
        node_ip = ray.util.get_node_ip_address()
        host = bind_host(node_ip, self._control_plane_ip)
        if self._child is None:
            runtime = _usable_runtime(self._runtimes(spec.runtime), spec)
            self._spawn(runtime, host)
        assert self._child is not None and self._log_path is not None
        return ReplicaLaunch(
            address=self._address,
            pid=self._child.pid,
            log_path=str(self._log_path),
            node_id=ray.get_runtime_context().get_node_id(),
        )

    def _spawn(self, runtime: Runtime, host: str) -> None:
        port = free_port(host)
        command = runtime.launch_command(self.spec, host, port)
        argv = guarded_argv(
            os.getpid(),
            launcher_argv(None, self.spec.resources.memory_limit_bytes, command.argv),
        )
        # Ray already narrowed CUDA_VISIBLE_DEVICES to this actor's GPUs; it passes through.
        env = replica_environment(os.environ, command.env, self.spec.replica_id, None)
        log_dir = _writable_dir(Path(self._log_dir))
        self._log_path = log_dir / f"{self.spec.replica_id}.log"
        with self._log_path.open("ab") as log:
            self._child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=log_dir,
                start_new_session=True,
            )
        self._process = psutil.Process(self._child.pid)
        url_host = f"[{host}]" if ":" in host else host
        self._address = f"http://{url_host}:{port}"

    def status(self) -> ReplicaStatus:
        if self._child is None or self._process is None:
            return ReplicaStatus(pid=None, alive=False)
        exit_code = self._child.poll()
        if exit_code is not None:
            return ReplicaStatus(pid=self._child.pid, alive=False, exit_code=exit_code)
        return ReplicaStatus(
            pid=self._child.pid,
            alive=True,
            cpu_cores_used=processes.cpu_cores_used(self._process),
            memory_bytes=processes.tree_memory_bytes(self._process),
        )

    def logs(self, lines: int) -> str:
        return processes.tail(self._log_path, lines) if self._log_path is not None else ""

    def stop(self, drain_seconds: float) -> int | None:
        """SIGTERM the replica's process group, wait for the drain, then SIGKILL it."""
        child = self._child
        if child is None:
            return None
        processes.signal_group(child.pid, signal.SIGTERM)
        _wait_exit(child, max(0.0, drain_seconds) + KILL_GRACE_SECONDS)
        # Also reaches workers the replica left behind after its leader exited.
        processes.signal_group(child.pid, signal.SIGKILL)
        _wait_exit(child, KILL_GRACE_SECONDS)
        return child.poll()


def _wait_exit(child: subprocess.Popen[bytes], timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return True
        time.sleep(_POLL_SECONDS)
    return False


def _writable_dir(preferred: Path) -> Path:
    """The control plane's log folder when this node can write it (shared or same machine),
    else a folder under the node's temp directory."""
    for candidate in (preferred, Path(tempfile.gettempdir()) / "regolo" / "replicas"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    raise OSError(f"no writable folder for replica logs on this node ({preferred})")
