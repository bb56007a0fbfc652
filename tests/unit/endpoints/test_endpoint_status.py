"""An endpoint's status from its deployments' facts: the state machine users see."""

from __future__ import annotations

from regolo.server.control.status import DeploymentFacts, EndpointStatus, endpoint_status


def _facts(version: str = "1.0", weight: float = 1.0, **kwargs: object) -> DeploymentFacts:
    base: dict[str, object] = dict(
        desired=2, ready=0, starting=0, unhealthy=0, failed=False, ever_ready=False
    )
    base.update(kwargs)
    return DeploymentFacts(version=version, traffic_weight=weight, **base)  # type: ignore[arg-type]


def test_pending_then_deploying_then_ready() -> None:
    assert endpoint_status([_facts()], deleted=False)[0] == EndpointStatus.PENDING
    assert endpoint_status([_facts(starting=2)], deleted=False)[0] == EndpointStatus.DEPLOYING
    assert endpoint_status([_facts(ready=2, ever_ready=True)], deleted=False) == (
        EndpointStatus.READY,
        None,
    )


def test_pending_carries_the_capacity_reason() -> None:
    reason = "cpu_limit of 4 cores exceeds the 2 cores here"
    status = endpoint_status([_facts(waiting_reason=reason)], deleted=False)
    assert status == (EndpointStatus.PENDING, reason)


def test_updating_while_a_new_replica_or_canary_starts() -> None:
    scaling = _facts(desired=3, ready=2, starting=1, ever_ready=True)
    assert endpoint_status([scaling], deleted=False)[0] == EndpointStatus.UPDATING
    stable = _facts(weight=0.95, ready=2, ever_ready=True)
    canary = _facts("1.1", weight=0.05, desired=1, starting=1)
    assert endpoint_status([stable, canary], deleted=False)[0] == EndpointStatus.UPDATING


def test_degraded_when_a_replica_is_sick_or_missing() -> None:
    sick = _facts(ready=1, unhealthy=1, ever_ready=True)
    assert endpoint_status([sick], deleted=False)[0] == EndpointStatus.DEGRADED
    missing = _facts(ready=1, ever_ready=True)
    assert endpoint_status([missing], deleted=False)[0] == EndpointStatus.DEGRADED


def test_failed_with_the_reason() -> None:
    status, reason = endpoint_status(
        [_facts(failed=True, last_error="model failed to load")], deleted=False
    )
    assert status == EndpointStatus.FAILED and reason == "version 1.0: model failed to load"


def test_a_failed_canary_without_traffic_does_not_fail_the_endpoint() -> None:
    stable = _facts(ready=2, ever_ready=True)
    canary = _facts("1.1", weight=0.0, desired=1, failed=True, last_error="boom")
    assert endpoint_status([stable, canary], deleted=False)[0] != EndpointStatus.FAILED


def test_deleting_and_scaled_to_zero() -> None:
    assert endpoint_status([_facts(ready=2)], deleted=True)[0] == EndpointStatus.DELETING
    assert endpoint_status([_facts(desired=0)], deleted=False)[0] == EndpointStatus.SCALED_TO_ZERO


def test_a_failed_canary_with_traffic_degrades_but_does_not_fail_the_endpoint() -> None:
    stable = _facts(weight=0.95, ready=2, ever_ready=True)
    canary = _facts("1.1", weight=0.05, desired=1, failed=True, last_error="OOM")
    assert endpoint_status([stable, canary], deleted=False) == (
        EndpointStatus.DEGRADED,
        "version 1.1: OOM",
    )
