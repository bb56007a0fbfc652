"""Pure decisions of the Ray backend: what a replica asks Ray for, and whether any node has it.

Ray waits forever for resources no node has, so the backend checks a replica's demand
against the nodes before it creates the actor. Accelerators are custom node resources
named ``accelerator:<name>`` (``ray start --resources '{"accelerator:H100-80GB": 8}'``),
so an H100 instance lands on an H100 node; CPU instances need none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from regolo.server.errors import Unavailable
from regolo.server.specs import Capacity, Resources

ACCELERATOR_PREFIX = "accelerator:"
DEFAULT_REPLICA_CPUS = 1.0  # reserved when an endpoint sets no cpu_request
RETRY_SECONDS = 15.0
UNENFORCED = (
    "cpu_request, memory_request_bytes and GPUs are reserved by Ray's scheduler, "
    "not enforced on the node",
    "cpu_limit is not applied on Ray nodes",
    "memory_limit_bytes caps virtual address space (RLIMIT_AS), not resident memory",
)


@dataclass(frozen=True, kw_only=True)
class RayDemand:
    """What one replica actor reserves on its node."""

    num_cpus: float
    num_gpus: float = 0.0
    memory_bytes: int | None = None
    custom: dict[str, float] = field(default_factory=dict)

    def as_resources(self) -> dict[str, float]:
        """The demand in the keys Ray reports node resources with."""
        wanted = {"CPU": self.num_cpus, **self.custom}
        if self.num_gpus:
            wanted["GPU"] = self.num_gpus
        if self.memory_bytes:
            wanted["memory"] = float(self.memory_bytes)
        return {key: amount for key, amount in wanted.items() if amount > 0}


def accelerator_resource(accelerator: str) -> str:
    return f"{ACCELERATOR_PREFIX}{accelerator}"


def demand_of(resources: Resources) -> RayDemand:
    custom: dict[str, float] = {}
    if resources.gpu_count and resources.accelerator and resources.accelerator != "cpu":
        custom[accelerator_resource(resources.accelerator)] = float(resources.gpu_count)
    return RayDemand(
        num_cpus=resources.cpu_request or DEFAULT_REPLICA_CPUS,
        num_gpus=float(resources.gpu_count),
        memory_bytes=resources.memory_request_bytes,
        custom=custom,
    )


def check_feasible(demand: RayDemand, nodes: Sequence[Mapping[str, float]]) -> None:
    """Refuse a demand that no single live node could ever hold (``nodes``: totals)."""
    wanted = demand.as_resources()
    if any(_holds(node, wanted) for node in nodes):
        return
    for key, amount in wanted.items():
        largest = max((node.get(key, 0.0) for node in nodes), default=0.0)
        if largest == 0:
            raise Unavailable(f"no node has resource {key}", retry_after_seconds=RETRY_SECONDS)
        if largest < amount:
            raise Unavailable(
                f"no node has {_amount(key, amount)} of {key} (the largest has "
                f"{_amount(key, largest)})",
                retry_after_seconds=RETRY_SECONDS,
            )
    raise Unavailable(
        f"no single node has all of {_describe(wanted)}", retry_after_seconds=RETRY_SECONDS
    )


def check_free(demand: RayDemand, available: Mapping[str, float]) -> None:
    """Refuse fast when the whole cluster has not enough free right now.

    A necessary condition only (free resources may be split over nodes); the actor's
    ready timeout catches the rest.
    """
    short = {k: v for k, v in demand.as_resources().items() if available.get(k, 0.0) < v}
    if short:
        raise Unavailable(
            f"the Ray cluster has not enough free {', '.join(sorted(short))} right now "
            f"for {_describe(demand.as_resources())}; retrying when a replica stops",
            retry_after_seconds=RETRY_SECONDS,
        )


def capacity_of(totals: Mapping[str, float]) -> Capacity:
    """The cluster's total resources as a ``Capacity`` with GPUs keyed by accelerator."""
    gpus = {
        key.removeprefix(ACCELERATOR_PREFIX): int(amount)
        for key, amount in totals.items()
        if key.startswith(ACCELERATOR_PREFIX) and amount >= 1
    }
    return Capacity(
        cpu_cores=float(totals.get("CPU", 0.0)),
        memory_bytes=int(totals.get("memory", 0.0)),
        gpus=gpus,
        unenforced=UNENFORCED,
    )


def _holds(node: Mapping[str, float], wanted: Mapping[str, float]) -> bool:
    return all(node.get(key, 0.0) >= amount for key, amount in wanted.items())


def _amount(key: str, amount: float) -> str:
    if key == "memory":
        return f"{amount / 2**30:.1f} GiB"
    return f"{amount:g}"


def _describe(wanted: Mapping[str, float]) -> str:
    return ", ".join(f"{_amount(key, amount)} {key}" for key, amount in sorted(wanted.items()))
