"""The autoscaler loop against a real (SQLite) store, a fake gateway and a simulated clock."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from regolo.server.autoscaling.loop import Autoscaler
from regolo.server.autoscaling.signals import Completion, UsageTap, share_waiting
from regolo.server.autoscaling.tables import AutoscalingEvent, AutoscalingPolicyRow
from regolo.server.store.database import Database
from regolo.server.store.migrate import upgrade
from regolo.server.store.tables import Account, Deployment, Endpoint, Model, ModelVersion, Replica


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeGateway:
    def __init__(self) -> None:
        self.outstanding: dict[str, int] = {}
        self.queued: dict[str, int] = {}

    def in_flight(self, replica_ids: Iterable[str]) -> int:
        return sum(self.outstanding.get(r, 0) for r in replica_ids)

    def waiting(self, endpoint_id: str) -> int:
        return self.queued.get(endpoint_id, 0)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'regolo.db'}")
    upgrade(database.write_engine)
    with database.write() as session:
        session.add(Account(id="acct", name="acme"))
        session.add(Model(id="m", account_id="acct", name="model"))
        session.flush()
        session.add(
            ModelVersion(id="mv", model_id="m", version="1.0", source_kind="local", source_uri="/x")
        )
        session.add(
            Endpoint(
                id="ep",
                account_id="acct",
                name="api",
                model_id="m",
                replicas=1,
                stable_version="1.0",
                runtime_options={},
                allowed_key_ids=[],
            )
        )
        session.flush()
        session.add(
            Deployment(
                id="dep", endpoint_id="ep", model_version_id="mv", version="1.0", traffic_weight=1.0
            )
        )
        session.flush()
        session.add(_replica("r1"))
    try:
        yield database
    finally:
        database.dispose()


def _replica(replica_id: str) -> Replica:
    return Replica(
        id=replica_id,
        deployment_id="dep",
        state="ready",
        backend="fake",
        runtime="fake",
        instance_type="cpu-small",
        auth_token="t",
        cpu_cores_used=0.1,
    )


def _policy(db: Database, **policy: object) -> None:
    with db.write() as session:
        session.add(AutoscalingPolicyRow(endpoint_id="ep", account_id="acct", policy=policy))


def _replicas(db: Database) -> tuple[int, int]:
    with db.read() as session:
        deployment = session.get(Deployment, "dep")
        endpoint = session.get(Endpoint, "ep")
        assert deployment is not None and endpoint is not None
        return deployment.replicas, endpoint.replicas


def test_a_burst_of_in_flight_requests_scales_up_in_one_tick(db: Database) -> None:
    _policy(db, metrics=[{"metric": "concurrency", "target": 2}], min_replicas=1, max_replicas=8)
    clock, gateway = Clock(), FakeGateway()
    autoscaler = Autoscaler(db, UsageTap(clock), gateway, clock)
    assert autoscaler.tick() is False  # quiet: nothing to do
    gateway.outstanding["r1"] = 10
    clock.now += 1
    assert autoscaler.tick() is True
    assert _replicas(db) == (5, 5)  # ceil(1 x 10 / 2), the endpoint follows its stable version
    with db.read() as session:
        event = session.scalars(select(AutoscalingEvent)).one()
    assert (event.current_replicas, event.desired_replicas, event.kind) == (1, 5, "scale")
    assert event.inputs["metrics"]["concurrency"]["panic"] == 10.0


def test_request_rate_from_the_usage_tap(db: Database) -> None:
    _policy(
        db,
        metrics=[{"metric": "request_rate", "target": 60}],
        min_replicas=1,
        max_replicas=8,
        stable_window_seconds=10,
        panic_window_seconds=2,
    )
    clock, gateway = Clock(), FakeGateway()
    tap = UsageTap(clock)
    autoscaler = Autoscaler(db, tap, gateway, clock)
    for _ in range(12):  # 3 requests a second = 180/min on one replica; target 60
        for _ in range(3):
            tap.add("dep", Completion(clock.now, 10.0, False))
        autoscaler.tick()
        clock.now += 1
    assert _replicas(db)[0] == 3


def test_a_waiting_request_wakes_a_deployment_at_zero(db: Database) -> None:
    _policy(
        db,
        metrics=[{"metric": "request_rate", "target": 60}],
        min_replicas=0,
        max_replicas=2,
        idle_window_seconds=30,
    )
    clock, gateway = Clock(), FakeGateway()
    autoscaler = Autoscaler(db, UsageTap(clock), gateway, clock)
    autoscaler.tick()
    clock.now += 31
    assert autoscaler.tick() is True
    assert _replicas(db) == (0, 0)
    with db.write() as session:
        replica = session.get(Replica, "r1")
        assert replica is not None
        replica.state = "stopped"
    clock.now += 100
    assert autoscaler.tick() is False  # idle at zero stays there
    gateway.queued["ep"] = 1
    assert autoscaler.tick() is True
    assert _replicas(db) == (1, 1)


def test_a_concurrent_api_change_wins_over_a_stale_decision(db: Database) -> None:
    _policy(db, metrics=[{"metric": "concurrency", "target": 1}], min_replicas=1, max_replicas=8)
    clock, gateway = Clock(), FakeGateway()
    autoscaler = Autoscaler(db, UsageTap(clock), gateway, clock)
    gateway.outstanding["r1"] = 4
    from regolo.server.autoscaling import loop

    targets = loop.read_targets(db)
    with db.write() as session:
        deployment = session.get(Deployment, "dep")
        assert deployment is not None
        deployment.replicas = 3  # an operator's PATCH lands between read and write
    decision = autoscaler._decide(targets[0], 0, clock.now)
    assert autoscaler._write([(targets[0], decision)], clock.now) is False
    assert _replicas(db)[0] == 3


def test_waiting_requests_are_shared_by_traffic_weight() -> None:
    assert share_waiting(10, {"a": 0.9, "b": 0.1}) == {"a": 9, "b": 1}
    assert share_waiting(1, {"a": 0.95, "b": 0.05}) == {"a": 1, "b": 1}
    assert share_waiting(3, {"a": 0.0}) == {"a": 3}
