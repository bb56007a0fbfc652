"""Pure decisions: spare capacity, visibility, completion windows, result files."""

from __future__ import annotations

import asyncio
import json

import pytest

from regolo.server.batch.access import may_see
from regolo.server.batch.capacity import ReplicaSlots, spare_slots
from regolo.server.batch.results import LineRecord, build_result_files
from regolo.server.batch.status import window_seconds
from regolo.server.gateway.routing_table import RouteDeployment, RouteReplica
from regolo.server.specs import Principal


@pytest.mark.parametrize(
    ("slots", "online", "batch", "online_recently", "reserved", "spare"),
    [
        (4, 0, 0, False, 0, 4),  # no online traffic: every slot is batch work's
        (4, 0, 3, False, 0, 1),
        (4, 0, 4, False, 0, 0),
        (4, 1, 0, False, 0, 0),  # an online request: nothing new starts there
        (4, 9, 0, False, 0, 0),
        (4, 0, 0, True, 0, 0),  # online traffic just ended: not yet
        (1, 0, 0, False, 0, 1),
        (1, 1, 0, False, 0, 0),
        (4, 0, 0, False, 1, 3),  # online traffic it cannot see: one slot left to it
        (1, 0, 0, False, 1, 1),
    ],
)
def test_batch_work_takes_only_replicas_free_of_online_requests(
    slots: int, online: int, batch: int, online_recently: bool, reserved: int, spare: int
) -> None:
    got = spare_slots(slots, online, batch, online_recently=online_recently, reserved=reserved)
    assert got == spare


@pytest.mark.parametrize(
    ("online", "batch", "online_recently", "reserved", "spare"),
    [
        (0, 0, False, 0, 6),  # every slot, and two lines waiting in the replica's queue
        (0, 5, False, 0, 1),
        (0, 6, False, 0, 0),
        (1, 0, False, 0, 0),  # online traffic: nothing, queued ahead or not
        (0, 0, True, 0, 0),
        (0, 0, False, 1, 3),  # a slot left to others: nothing queued ahead of them
    ],
)
def test_lines_queued_ahead_only_on_a_replica_batch_work_has_alone(
    online: int, batch: int, online_recently: bool, reserved: int, spare: int
) -> None:
    got = spare_slots(
        4, online, batch, online_recently=online_recently, reserved=reserved, queue_ahead=2
    )
    assert got == spare


def replicas(*replica_ids: str) -> RouteDeployment:
    return RouteDeployment(
        deployment_id="d",
        version="1",
        traffic_weight=1.0,
        served_model_name="m",
        replicas=tuple(RouteReplica(replica_id=r, address=f"http://{r}") for r in replica_ids),
    )


def test_replica_slots_fill_only_replicas_without_online_requests() -> None:
    online = {"a": 1, "b": 0}
    slots = ReplicaSlots(4, lambda replica_id: online[replica_id])
    deployment = replicas("a", "b")
    picked = [slots.acquire(deployment) for _ in range(5)]
    assert [r.replica_id if r else None for r in picked] == ["b", "b", "b", "b", None]
    slots.release(picked[0])  # type: ignore[arg-type]
    assert slots.acquire(deployment) is not None


def test_batch_work_resumes_only_after_a_quiet_spell() -> None:
    now = [100.0]
    online = {"a": 0, "b": 0}
    slots = ReplicaSlots(
        1, lambda replica_id: online[replica_id], resume_after_seconds=0.1, clock=lambda: now[0]
    )
    deployment = replicas("a")

    async def scenario() -> None:
        online["a"] = 1
        slots.online_changed("a", 1)
        assert slots.acquire(deployment) is None
        online["a"] = 0
        slots.online_changed("a", 0)
        now[0] += 0.05
        assert slots.acquire(deployment) is None  # a client's next request may be coming
        now[0] += 0.06
        assert slots.acquire(deployment) is not None

    asyncio.run(scenario())


def test_lines_are_queued_ahead_only_long_after_the_last_online_request() -> None:
    now = [100.0]
    online = {"a": 0}
    slots = ReplicaSlots(
        2,
        lambda replica_id: online[replica_id],
        resume_after_seconds=0.1,
        queue_ahead=1,
        queue_ahead_after_seconds=10.0,
        clock=lambda: now[0],
    )
    deployment = replicas("a")

    def fill() -> int:
        taken = 0
        while slots.acquire(deployment) is not None:
            taken += 1
        for _ in range(taken):
            slots.release(deployment.replicas[0])
        return taken

    async def scenario() -> None:
        assert fill() == 3  # never an online request here: both slots and one queued
        online["a"] = 1
        slots.online_changed("a", 1)
        assert fill() == 0
        online["a"] = 0
        slots.online_changed("a", 0)
        now[0] += 1.0
        assert fill() == 2  # online traffic a second ago: the slots only
        now[0] += 9.5
        assert fill() == 3

    asyncio.run(scenario())


def test_online_traffic_seen_while_no_batch_ran_still_keeps_the_queue_empty() -> None:
    now = [100.0]
    slots = ReplicaSlots(
        2, lambda replica_id: 0, queue_ahead=1, queue_ahead_after_seconds=10.0, clock=lambda: now[0]
    )
    deployment = replicas("a")
    slots.saw_online("a")  # from the gateway's thread, before any batch line was sent
    now[0] += 1.0
    assert [slots.acquire(deployment) is not None for _ in range(3)] == [True, True, False]


def principal(scopes: set[str], key_id: str = "k1", account_id: str = "acme") -> Principal:
    return Principal(account_id=account_id, key_id=key_id, scopes=frozenset(scopes))


@pytest.mark.parametrize(
    ("caller", "endpoint_name", "seen"),
    [
        (principal({"admin"}, key_id="other"), "beta", True),
        (principal({"inference:alpha"}, key_id="other"), "beta", False),
        (principal({"inference:beta"}, key_id="other"), "beta", True),
        (principal({"inference:*"}, key_id="other"), "beta", True),
        (principal({"inference:alpha"}, key_id="owner"), "beta", True),
        (principal({"inference:alpha"}, key_id="other"), None, False),
        (principal({"inference:*"}, key_id="other"), None, True),
        (principal({"admin"}, account_id="globex"), "beta", False),
    ],
)
def test_who_may_see_a_batch(caller: Principal, endpoint_name: str | None, seen: bool) -> None:
    assert may_see(caller, account_id="acme", key_id="owner", endpoint_name=endpoint_name) is seen


@pytest.mark.parametrize(
    ("window", "seconds"),
    [
        ("24h", 86400),
        ("1h", 3600),
        ("7d", 604800),
        ("8d", None),
        ("0h", None),
        ("24", None),
        ("h", None),
        ("-1h", None),
    ],
)
def test_completion_windows(window: str, seconds: int | None) -> None:
    assert window_seconds(window) == seconds


def record(line_no: int, state: str = "done", status: int | None = 200, **kw: object) -> LineRecord:
    fields: dict[str, object] = {
        "line_no": line_no,
        "custom_id": f"c{line_no}",
        "state": state,
        "request_id": f"r{line_no}",
        "status_code": status,
        "response_body": '{"ok": true}' if status else None,
        "error_code": None,
        "error_message": None,
    }
    fields.update(kw)
    return LineRecord(**fields)  # type: ignore[arg-type]


def test_result_files_split_and_order_lines_deterministically() -> None:
    records = [
        record(3, status=400),
        record(1),
        record(2, state="pending", status=None),
        record(4, status=None, error_code="request_failed", error_message="down"),
    ]
    first = build_result_files("batch_abc", "expired", records)
    again = build_result_files("batch_abc", "expired", list(reversed(records)))
    assert first == again
    output = [json.loads(line) for line in first.output.splitlines()]
    errors = [json.loads(line) for line in first.errors.splitlines()]
    assert output == [
        {
            "id": "batch_req_abc_1",
            "custom_id": "c1",
            "response": {"status_code": 200, "request_id": "r1", "body": {"ok": True}},
            "error": None,
        }
    ]
    assert [(e["custom_id"], (e["error"] or {}).get("code")) for e in errors] == [
        ("c2", "batch_expired"),
        ("c3", None),
        ("c4", "request_failed"),
    ]


def test_a_held_back_replica_keeps_one_slot_free_until_batch_work_drains() -> None:
    slots = ReplicaSlots(4, lambda replica_id: 0)
    deployment = replicas("a", "b")
    only_a = RouteDeployment(
        deployment_id="d",
        version="1",
        traffic_weight=1.0,
        served_model_name="m",
        replicas=deployment.replicas[:1],
    )
    taken = [slots.acquire(only_a) for _ in range(4)]
    assert None not in taken
    slots.hold_back("a")
    slots.release(taken[0])  # type: ignore[arg-type]
    assert slots.acquire(only_a) is None  # 3 in flight: the fourth slot stays free
    for replica in taken[1:]:
        slots.release(replica)  # type: ignore[arg-type]
    assert [slots.acquire(only_a) is not None for _ in range(5)] == [True] * 4 + [False]
