"""Facts about replica processes from the OS (through psutil), and signals to them."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from regolo.server.backends.environment import REPLICA_ID_ENV

_TAIL_BLOCK_BYTES = 8192


def is_our_replica(pid: int, replica_id: str) -> bool:
    """Alive, and started for this replica: a pid reused by another process is not ours."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        if replica_id in process.cmdline():
            return True
        return process.environ().get(REPLICA_ID_ENV) == replica_id
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def signal_group(pid: int, signum: signal.Signals) -> None:
    """Signal the replica's whole process group (it leads its own session)."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def tree_memory_bytes(process: psutil.Process) -> int | None:
    try:
        members = [process, *process.children(recursive=True)]
        return sum(member.memory_info().rss for member in members)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def cpu_cores_used(process: psutil.Process) -> float | None:
    """Cores busy since the previous call on the same ``process`` object (0.0 the first time)."""
    try:
        return process.cpu_percent(interval=None) / 100.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a file, reading only as much of its end as needed."""
    if lines <= 0 or not path.exists():
        return ""
    with path.open("rb") as log:
        end = log.seek(0, os.SEEK_END)
        start = end
        chunk = b""
        while start > 0 and chunk.count(b"\n") <= lines:
            start = max(0, start - _TAIL_BLOCK_BYTES)
            log.seek(start)
            chunk = log.read(end - start)
    text = chunk.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
