"""Tie a replica's life to its parent, then hand over to the ordinary launcher.

A Ray replica process is the child of its actor. When the actor's worker dies (its node
is lost, the raylet is killed, the actor is OOM-killed) nobody would stop the replica,
and it would keep a port and a GPU with no record of it. Linux's parent-death signal
kills it instead. The flag survives ``execv``, so it holds for the runtime's server.

    python -m regolo.server.backends.parent_guard --parent PID -- LAUNCHER-ARGV...
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Sequence

from regolo.server.backends import launcher

_PR_SET_PDEATHSIG = 1


def guarded_argv(parent_pid: int, argv: Sequence[str]) -> tuple[str, ...]:
    """``argv`` of ``launcher.launcher_argv`` run under the guard (replaces its prefix)."""
    launcher_args = list(argv)
    prefix = [sys.executable, "-m", "regolo.server.backends.launcher"]
    if launcher_args[:3] == prefix:
        launcher_args = launcher_args[3:]
    return (
        sys.executable,
        "-m",
        "regolo.server.backends.parent_guard",
        "--parent",
        str(parent_pid),
        *launcher_args,
    )


def die_with_parent(parent_pid: int) -> bool:
    """Ask for SIGKILL when the parent dies; False if it is already gone (or not Linux)."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None or not sys.platform.startswith("linux"):
        return os.getppid() == parent_pid
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return False
    # The parent may have died before prctl: then we were re-parented already.
    return os.getppid() == parent_pid


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Only the first two words are the guard's: the rest is the launcher's, "--" included.
    parser = argparse.ArgumentParser(prog="regolo-replica-guard")
    parser.add_argument("--parent", type=int, required=True)
    parent = parser.parse_args(args[:2]).parent
    if not die_with_parent(parent):
        print("regolo-replica-guard: the parent is gone; not starting", file=sys.stderr)
        return 1
    return launcher.main(args[2:])


if __name__ == "__main__":
    sys.exit(main())
