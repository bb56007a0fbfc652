import random
from collections import Counter

from regolo.server.gateway.picker import ReplicaPicker, pick_deployment
from regolo.server.gateway.routing_table import RouteDeployment, RouteReplica


def replicas(n: int) -> tuple[RouteReplica, ...]:
    return tuple(
        RouteReplica(replica_id=f"r{i}", address=f"http://127.0.0.1:{9000 + i}") for i in range(n)
    )


def dep(name: str, weight: float, n: int = 1) -> RouteDeployment:
    return RouteDeployment(
        deployment_id=name,
        version=name,
        traffic_weight=weight,
        served_model_name="m",
        replicas=replicas(n),
    )


def test_weights_split_and_empty_deployments_get_nothing() -> None:
    rng = random.Random(7)
    picks = Counter(
        pick_deployment([dep("a", 3), dep("b", 1), dep("c", 5, n=0)], rng).deployment_id
        for _ in range(4000)
    )  # type: ignore[union-attr]
    assert picks["c"] == 0 and 2800 < picks["a"] < 3200
    assert pick_deployment([dep("a", 1, n=0)], rng) is None


def test_least_outstanding_of_two() -> None:
    picker = ReplicaPicker(rng=random.Random(1))
    pool = replicas(2)
    picker.started("r0")
    assert all(picker.pick(pool).replica_id == "r1" for _ in range(20))  # type: ignore[union-attr]


def test_ejection_after_consecutive_failures_never_all() -> None:
    now = [0.0]
    picker = ReplicaPicker(failure_threshold=2, ejection_seconds=10, clock=lambda: now[0])
    pool = replicas(2)
    for _ in range(2):
        picker.started("r0")
        picker.finished("r0", failed=True)
    assert picker.is_ejected("r0")
    assert {picker.pick(pool).replica_id for _ in range(20)} == {"r1"}  # type: ignore[union-attr]
    for _ in range(2):
        picker.started("r1")
        picker.finished("r1", failed=True)
    assert {picker.pick(pool).replica_id for _ in range(50)} == {"r0", "r1"}  # type: ignore[union-attr]
    now[0] = 11.0
    assert not picker.is_ejected("r0")
    picker.finished("r0", failed=False)
    assert not picker.is_ejected("r0")


def test_exclude_and_forget() -> None:
    picker = ReplicaPicker()
    assert picker.pick(replicas(2), exclude={"r0", "r1"}) is None
    picker.finished("gone", failed=True)
    picker.forget_except({"r0"})
    assert not picker.is_ejected("gone")
