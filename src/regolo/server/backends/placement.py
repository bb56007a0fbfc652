"""Pure placement decisions of the local backend: does a replica fit, which cores and GPUs."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from regolo.server.errors import Unavailable, ValidationFailed
from regolo.server.specs import Capacity, Resources

_REPLICA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_replica_id(replica_id: str) -> str:
    """Replica ids name log files, so they must be plain file names."""
    if not _REPLICA_ID.fullmatch(replica_id):
        raise ValidationFailed(
            "replica_id must be 1-128 letters, digits, '.', '_' or '-', not starting with a symbol",
            param="replica_id",
        )
    return replica_id


def check_fits(resources: Resources, capacity: Capacity, free_gpus: int) -> None:
    """Refuse what can never fit this machine, and GPUs that are all taken right now."""
    total_gpus = sum(capacity.gpus.values())
    if resources.gpu_count > total_gpus:
        have = f"{total_gpus} GPU(s)" if total_gpus else "no GPU"
        raise ValidationFailed(
            f"{resources.gpu_count} GPU(s) requested but this machine has {have}; "
            "choose a CPU instance type",
            param="resources.gpu_count",
        )
    for name in ("cpu_request", "cpu_limit"):
        cores = getattr(resources, name)
        if cores is not None and cores > capacity.cpu_cores:
            raise ValidationFailed(
                f"{name} of {cores} cores exceeds the {capacity.cpu_cores:g} cores here",
                param=f"resources.{name}",
            )
    for name in ("memory_request_bytes", "memory_limit_bytes"):
        size = getattr(resources, name)
        if size is not None and size > capacity.memory_bytes:
            raise ValidationFailed(
                f"{name} of {size} exceeds the {capacity.memory_bytes} bytes of memory here",
                param=f"resources.{name}",
            )
    if resources.gpu_count > free_gpus:
        raise Unavailable(
            f"{resources.gpu_count} GPU(s) requested, {free_gpus} free; retry when a replica stops",
            retry_after_seconds=30,
        )


def pick_cores(
    cpu_limit: float | None, cores: Sequence[int], load: Mapping[int, int]
) -> tuple[int, ...]:
    """The least loaded ``ceil(cpu_limit)`` cores; all cores when there is no limit.

    Affinity works in whole cores, so a limit of 1.5 gets 2 of them.
    """
    if cpu_limit is None:
        return tuple(cores)
    wanted = min(len(cores), max(1, math.ceil(cpu_limit)))
    by_load = sorted(cores, key=lambda core: (load.get(core, 0), core))
    return tuple(sorted(by_load[:wanted]))


def pick_gpus(count: int, total: int, taken: set[int]) -> tuple[int, ...]:
    free = [index for index in range(total) if index not in taken]
    return tuple(free[:count])
