"""Apply OS limits to itself, then become the replica: the thread-safe alternative to a
``preexec_fn`` (which may deadlock in a multi-threaded parent).

    python -m regolo.server.backends.launcher --cpus 0,1 --memory-bytes N -- ARGV...
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from collections.abc import Sequence


def launcher_argv(
    cores: tuple[int, ...] | None, memory_bytes: int | None, argv: Sequence[str]
) -> tuple[str, ...]:
    prefix: list[str] = [sys.executable, "-m", "regolo.server.backends.launcher"]
    if cores is not None:
        prefix += ["--cpus", ",".join(str(core) for core in cores)]
    if memory_bytes is not None:
        prefix += ["--memory-bytes", str(memory_bytes)]
    return (*prefix, "--", *argv)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="regolo-replica-launcher")
    parser.add_argument("--cpus", default="")
    parser.add_argument("--memory-bytes", type=int, default=0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    if args.cpus:
        os.sched_setaffinity(0, {int(core) for core in args.cpus.split(",")})
    if args.memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (args.memory_bytes, args.memory_bytes))
    os.execv(command[0], command)  # noqa: S606 - argv list, no shell involved
    return 127  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(main())
