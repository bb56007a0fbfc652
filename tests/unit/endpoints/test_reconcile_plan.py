"""The reconciler's pure plan: start what is missing, drain before stopping, back off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from regolo.server.control.plan import (
    DesiredDeployment,
    ReplicaFact,
    plan,
    restart_backoff_seconds,
)
from regolo.server.specs import ReplicaState

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _replica(
    rid: str,
    state: ReplicaState = ReplicaState.READY,
    age_seconds: int = 60,
    deployment: str = "dep",
    outstanding: int = 0,
    drain_deadline: datetime | None = None,
    fingerprint: str | None = None,
) -> ReplicaFact:
    return ReplicaFact(
        replica_id=rid,
        deployment_id=deployment,
        state=state,
        created_at=NOW - timedelta(seconds=age_seconds),
        outstanding_requests=outstanding,
        drain_deadline=drain_deadline,
        fingerprint=fingerprint,
    )


def _want(replicas: int, active: bool = True, **kwargs: object) -> DesiredDeployment:
    return DesiredDeployment(deployment_id="dep", replicas=replicas, active=active, **kwargs)  # type: ignore[arg-type]


def test_starts_one_entry_per_missing_replica() -> None:
    result = plan([_want(3)], [_replica("r1")], now=NOW, max_start_attempts=3)
    assert result.start == ["dep", "dep"] and not result.drain and not result.stop


def test_scale_down_drains_starting_then_unhealthy_then_newest_ready() -> None:
    replicas = [
        _replica("old", age_seconds=300),
        _replica("new", age_seconds=10),
        _replica("sick", ReplicaState.UNHEALTHY),
        _replica("boot", ReplicaState.STARTING),
    ]
    result = plan([_want(1)], replicas, now=NOW, max_start_attempts=3)
    assert result.drain == ["boot", "sick", "new"]
    assert not result.stop  # nothing stops in the same tick it starts draining


def test_a_draining_replica_stops_only_when_idle_or_past_its_deadline() -> None:
    busy = _replica(
        "busy", ReplicaState.DRAINING, outstanding=2, drain_deadline=NOW + timedelta(seconds=5)
    )
    idle = _replica(
        "idle", ReplicaState.DRAINING, outstanding=0, drain_deadline=NOW + timedelta(seconds=5)
    )
    late = _replica(
        "late", ReplicaState.DRAINING, outstanding=1, drain_deadline=NOW - timedelta(seconds=1)
    )
    result = plan([_want(0)], [busy, idle, late], now=NOW, max_start_attempts=3)
    assert sorted(result.stop) == ["idle", "late"]


def test_removed_deployment_drains_all_its_replicas() -> None:
    result = plan(
        [_want(2, active=False)], [_replica("a"), _replica("b")], now=NOW, max_start_attempts=3
    )
    assert sorted(result.drain) == ["a", "b"] and not result.start


def test_replicas_of_unknown_deployments_are_drained_and_failed_ones_stopped() -> None:
    orphan = _replica("orphan", deployment="gone")
    failed = _replica("dead", ReplicaState.FAILED)
    result = plan([_want(0)], [orphan, failed], now=NOW, max_start_attempts=3)
    assert result.drain == ["orphan"] and result.stop == ["dead"]


def test_backoff_and_give_up() -> None:
    waiting = _want(1, failed_starts=1, next_start_at=NOW + timedelta(seconds=2))
    assert plan([waiting], [], now=NOW, max_start_attempts=3).empty
    due = _want(1, failed_starts=1, next_start_at=NOW - timedelta(seconds=1))
    assert plan([due], [], now=NOW, max_start_attempts=3).start == ["dep"]
    gave_up = _want(1, failed_starts=3)
    assert plan([gave_up], [], now=NOW, max_start_attempts=3).empty
    assert [restart_backoff_seconds(n) for n in (1, 2, 3, 10)] == [1, 2, 4, 60]


def test_plan_is_idempotent_when_desired_equals_observed() -> None:
    replicas = [_replica("a"), _replica("b")]
    assert plan([_want(2)], replicas, now=NOW, max_start_attempts=3).empty


def _rollout(replicas: list[ReplicaFact], wanted: int = 2) -> tuple[list[str], list[str]]:
    result = plan([_want(wanted, fingerprint="new")], replicas, now=NOW, max_start_attempts=3)
    return result.start, result.drain


def test_a_changed_configuration_rolls_one_replica_at_a_time_never_below_wanted() -> None:
    old1 = _replica("old1", age_seconds=300, fingerprint="old")
    old2 = _replica("old2", age_seconds=200, fingerprint="old")
    assert _rollout([old1, old2]) == (["dep"], [])  # one more, on the new configuration
    booting = _replica("new1", ReplicaState.STARTING, age_seconds=1, fingerprint="new")
    assert _rollout([old1, old2, booting]) == ([], [])  # the old ones serve meanwhile
    ready = _replica("new1", age_seconds=1, fingerprint="new")
    assert _rollout([old1, old2, ready]) == ([], ["old1"])  # oldest first, once it serves
    assert _rollout([old2, ready]) == (["dep"], [])
    new2 = _replica("new2", age_seconds=1, fingerprint="new")
    assert _rollout([old2, ready, new2]) == ([], ["old2"])
    assert _rollout([ready, new2]) == ([], [])  # done


def test_a_rollout_waits_while_a_new_replica_is_unhealthy() -> None:
    old = _replica("old", fingerprint="old")
    sick = _replica("new", ReplicaState.UNHEALTHY, fingerprint="new")
    assert _rollout([old, sick], wanted=1) == ([], [])


def test_a_rollout_scaling_down_drains_old_replicas_first() -> None:
    replicas = [_replica("old", fingerprint="old"), _replica("new", fingerprint="new")]
    assert _rollout(replicas, wanted=1) == ([], ["old"])


def test_a_new_configuration_that_fails_to_start_leaves_the_old_replicas_serving() -> None:
    old = _replica("old", fingerprint="old")
    failed = _replica("new", ReplicaState.FAILED, fingerprint="new")
    result = plan(
        [_want(1, fingerprint="new", failed_starts=3)], [old, failed], now=NOW, max_start_attempts=3
    )
    assert result.start == [] and result.drain == [] and result.stop == ["new"]


def test_replicas_from_before_fingerprints_are_not_rolled() -> None:
    assert _rollout([_replica("a"), _replica("b")]) == ([], [])
