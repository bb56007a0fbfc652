"""Acceptance in simulated time: odd minutes, hour and month boundaries, restarts,
scale-ups within an hour and a price change mid-month; invoices to the cent.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from regolo.server.billing import invoices, ledger
from regolo.server.billing.tables import Invoice, LedgerEntry, UsageHour

from .conftest import World

A100 = "a100-40gb-x1"
CPU = "cpu-small"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


Event = tuple[datetime, Callable[[World, dict[str, str]], None]]


def scenario() -> list[Event]:
    """Replicas of endpoint ``chat`` (A100, 0.50/h, 0.60/h from Feb 15 12:00) and ``tiny``
    (cpu-small, 0.02/h). Hours by hand, each in the month it starts:

    a: Jan 31 22:17 - Feb 1 01:05  -> 22:17, 23:17 (Jan), 00:17 (Feb)      = 2 Jan + 1 Feb
    b: Jan 31 23:40 - 23:59:30     (scale-up inside a's hour)              = 1 Jan
    c: Feb 10 09:13 - 11:13 exactly (a stop on the boundary starts nothing) = 2 Feb
    d: Feb 15 11:30 - 14:31        -> 11:30 at 0.50; 12:30, 13:30, 14:30 at 0.60
    t: Jan 31 23:59 - Feb 1 00:01  (tiny, crosses the month in its first hour) = 1 Jan
    """

    def start(name: str, when: str, instance: str = A100) -> Event:
        def act(w: World, ids: dict[str, str]) -> None:
            deployment = ids["tiny"] if instance == CPU else ids["chat"]
            ids[name] = w.start(deployment, at(when), instance)

        return at(when), act

    def stop(name: str, when: str) -> Event:
        return at(when), lambda w, ids: w.stop(ids[name], at(when))

    def price_change(when: str) -> Event:
        return at(when), lambda w, ids: w.set_price(A100, "0.60", "2026.2")

    return [
        start("a", "2026-01-31T22:17:00"),
        start("b", "2026-01-31T23:40:00"),
        start("t", "2026-01-31T23:59:00", CPU),
        stop("b", "2026-01-31T23:59:30"),
        stop("t", "2026-02-01T00:01:00"),
        stop("a", "2026-02-01T01:05:00"),
        start("c", "2026-02-10T09:13:00"),
        stop("c", "2026-02-10T11:13:00"),
        start("d", "2026-02-15T11:30:00"),
        price_change("2026-02-15T12:00:00"),
        stop("d", "2026-02-15T14:31:00"),
    ]


def run(world: World, tick_times: list[datetime], restart_at: set[datetime]) -> None:
    ids = {"chat": world.endpoint("chat", A100), "tiny": world.endpoint("tiny", CPU)}
    events = sorted(scenario(), key=lambda event: event[0])
    world.tick(at("2026-01-31T22:00:00"))  # the first price book and the initial credit
    for now in sorted(tick_times):
        while events and events[0][0] <= now:
            events.pop(0)[1](world, ids)
        if now in restart_at:
            world.restart()
        world.tick(now)


def dense_ticks() -> list[datetime]:
    """Every 7 minutes through the busy stretches, plus each event's instant."""
    ticks = {event_time for event_time, _ in scenario()}
    for start, hours in (
        ("2026-01-31T22:00:00", 4),
        ("2026-02-10T09:00:00", 3),
        ("2026-02-15T11:00:00", 4),
    ):
        first = at(start)
        ticks |= {first + timedelta(minutes=7 * i) for i in range(hours * 60 // 7)}
    return [*sorted(ticks), at("2026-03-01T00:30:00")]


def sparse_ticks() -> list[datetime]:
    """Long outages: the meter catches up after hours and after the month turned."""
    return [
        at("2026-01-31T22:20:00"),
        at("2026-02-01T03:00:00"),
        at("2026-02-15T12:00:00"),  # sees the new price book when it takes effect
        at("2026-02-20T00:00:00"),
        at("2026-03-01T00:30:00"),
    ]


EXPECTED_JANUARY = {
    ("chat", A100, "2026.1", "0.50"): 3,
    ("tiny", CPU, "2026.1", "0.02"): 1,
}
EXPECTED_FEBRUARY = {
    ("chat", A100, "2026.1", "0.50"): 4,  # a's third hour, c's two hours, d's first hour
    ("chat", A100, "2026.2", "0.60"): 3,
}


def _lines(document: dict[str, object]) -> dict[tuple[str, str, str, str], int]:
    lines = document["lines"]
    assert isinstance(lines, list)
    return {
        (
            line["endpoint"],
            line["instance_type"],
            line["price_book_version"],
            line["price_per_hour"],
        ): line["hours"]
        for line in lines
    }


@pytest.mark.parametrize("schedule", ["dense", "sparse"])
def test_invoices_to_the_cent(world: World, schedule: str) -> None:
    world.catalog = dataclasses.replace(world.catalog, version="2026.1")
    ticks = dense_ticks() if schedule == "dense" else sparse_ticks()
    restarts = {ticks[len(ticks) // 3], ticks[2 * len(ticks) // 3]}
    run(world, ticks, restarts)

    with world.db.read() as session:
        issued = {
            row.month: row.document
            for row in session.scalars(
                select(Invoice).where(Invoice.account_id == world.account_id)
            )
        }
        hours = session.scalar(select(func.count()).select_from(UsageHour))
        distinct = session.scalar(
            select(func.count()).select_from(
                select(UsageHour.replica_id, UsageHour.hour_index).distinct().subquery()
            )
        )
    assert set(issued) == {"2026-01", "2026-02"}
    january, february = issued["2026-01"], issued["2026-02"]
    assert _lines(january) == EXPECTED_JANUARY
    assert _lines(february) == EXPECTED_FEBRUARY
    # 3 x 0.50 + 1 x 0.02 ; 4 x 0.50 + 3 x 0.60
    assert (january["subtotal"], january["total_hours"]) == ("1.52", 4)
    assert (february["subtotal"], february["total_hours"]) == ("3.80", 7)
    assert january["opening_balance"] == "0.00" and january["credits_added"] == "100.00"
    assert january["credits_applied"] == "1.52" and january["amount_due"] == "0.00"
    assert january["closing_balance"] == "98.48"
    assert february["opening_balance"] == "98.48" and february["closing_balance"] == "94.68"
    assert hours == distinct == 11  # no hour twice, none lost
    with world.db.read() as session:
        assert ledger.balance(session, world.account_id) == Decimal("94.68")


def test_issued_invoices_never_change(world: World) -> None:
    world.catalog = dataclasses.replace(world.catalog, version="2026.1")
    run(world, sparse_ticks(), set())
    with world.db.read() as session:
        before = {r.id: r.document for r in session.scalars(select(Invoice))}
    for extra in (at("2026-03-01T01:00:00"), at("2026-03-02T00:00:00")):
        world.restart()
        world.tick(extra)
    with world.db.read() as session:
        after = {r.id: r.document for r in session.scalars(select(Invoice))}
        usage_entries = session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "usage")
        )
    assert before == after
    assert usage_entries == 11


def test_replaying_a_tick_charges_nothing(world: World) -> None:
    deployment = world.endpoint("chat", A100)
    world.start(deployment, at("2026-01-10T10:41:00"), A100)
    first = world.tick(at("2026-01-10T12:00:00"))
    assert first.hours_charged == 2  # 10:41 and 11:41
    for _ in range(3):
        world.restart()
        assert world.tick(at("2026-01-10T12:00:00")).hours_charged == 0
    assert world.tick(at("2026-01-10T12:41:00")).hours_charged == 0  # boundary: not yet
    assert world.tick(at("2026-01-10T12:41:01")).hours_charged == 1


def test_late_hours_of_an_invoiced_month_go_to_the_open_month(world: World) -> None:
    deployment = world.endpoint("chat", A100)
    world.tick(at("2026-01-20T00:00:00"))
    world.tick(at("2026-02-01T01:00:00"))  # January is invoiced (with no usage)
    # A replica whose start in January was only recorded now.
    world.start(deployment, at("2026-01-31T23:58:00"), A100)
    world.tick(at("2026-02-01T01:05:00"))
    with world.db.read() as session:
        january = session.scalar(select(Invoice).where(Invoice.month == "2026-01"))
        assert january is not None and january.document["lines"] == []
        preview = invoices.preview(session, world.account_id, world.now)
    assert _lines(preview) == {("chat", A100, world.catalog.version, "0.50"): 2}


def test_racing_meters_never_double_charge(world: World) -> None:
    deployment = world.endpoint("chat", A100)
    for minute in (3, 17, 44):
        world.start(deployment, at(f"2026-01-10T08:{minute:02d}:00"), A100)
    world.now = at("2026-01-10T12:00:00")  # 4 hours each: 12 in all
    meters = [world.meter() for _ in range(4)]
    threads = [threading.Thread(target=meter.tick) for meter in meters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    world.tick(world.now)  # finishes whatever a raced tick left
    with world.db.read() as session:
        hours = session.scalar(select(func.count()).select_from(UsageHour))
        debits = session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "usage")
        )
        balance = ledger.balance(session, world.account_id)
    assert hours == debits == 12
    assert balance == Decimal("100.00") - 12 * Decimal("0.50")
