"""Credit enforcement in simulated time: pause before an unpaid hour, hold, resume."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from regolo.server.billing import accounts, ledger, pause
from regolo.server.billing.config import BillingConfig
from regolo.server.billing.tables import BillingAccount
from regolo.server.store.tables import Deployment

from .conftest import World

A100 = "a100-40gb-x1"  # 0.50 / hour in the shipped price book


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _state(world: World) -> tuple[Decimal, bool, int]:
    with world.db.read() as session:
        balance = ledger.balance(session, world.account_id)
        state = session.get(BillingAccount, world.account_id)
        replicas = sum(d.replicas for d in session.query(Deployment).all())
    assert state is not None
    return balance, state.paused, replicas


def _top_up(world: World, amount: str, key: str) -> dict[str, object]:
    with world.db.write() as session:
        return accounts.top_up(
            session,
            accounts.TopUp(
                account_id=world.account_id,
                amount=Decimal(amount),
                idempotency_key=key,
                created_by_key_id=None,
            ),
            world.config,
            world.now,
        )


def test_pause_before_an_unpaid_hour_and_resume_after_a_top_up(world: World) -> None:
    world.config = BillingConfig(initial_credit=Decimal("1.20"))
    deployment = world.endpoint("chat", A100)
    replica = world.start(deployment, at("2026-03-02T10:00:00"), A100)
    world.tick(at("2026-03-02T10:00:10"))
    assert _state(world) == (Decimal("0.70"), False, 1)
    world.tick(at("2026-03-02T10:56:00"))  # next hour due within the lead, still payable
    assert _state(world) == (Decimal("0.70"), False, 1)
    world.tick(at("2026-03-02T11:00:30"))
    assert _state(world) == (Decimal("0.20"), False, 1)
    result = world.tick(at("2026-03-02T11:56:00"))  # 0.20 cannot pay 12:00-13:00
    assert result.paused == (world.account_id,)
    assert _state(world) == (Decimal("0.20"), True, 0)
    world.stop(replica, at("2026-03-02T11:57:00"))  # what the reconciler does next
    world.tick(at("2026-03-02T12:30:00"))
    assert _state(world) == (Decimal("0.20"), True, 0)  # never negative, nothing charged

    # Someone scales up while paused: held at zero, and the wish is remembered.
    with world.db.write() as session:
        row = session.get(Deployment, deployment)
        assert row is not None
        row.replicas = 2
    world.tick(at("2026-03-02T12:31:00"))
    assert _state(world)[1:] == (True, 0)

    small = _top_up(world, "0.50", "first")  # 0.70 cannot pay an hour of 2 replicas
    assert small["resumed"] is False
    again = _top_up(world, "0.50", "first")  # a retried top-up does not credit twice
    assert again["id"] == small["id"]
    assert _state(world) == (Decimal("0.70"), True, 0)
    big = _top_up(world, "0.40", "second")
    assert big["resumed"] is True
    assert _state(world) == (Decimal("1.10"), False, 2)
    with world.db.read() as session:
        assert not pause.is_paused(session, world.account_id)
        assert pause.saved_deployments(session, world.account_id) == []


def test_an_overdraft_is_never_silent(world: World) -> None:
    world.config = BillingConfig(initial_credit=Decimal("0.30"))
    deployment = world.endpoint("chat", A100)
    world.start(deployment, at("2026-03-02T10:00:00"), A100)  # first hour costs 0.50
    result = world.tick(at("2026-03-02T10:00:05"))
    assert result.paused == (world.account_id,)
    with world.db.write() as session:
        view = accounts.balance_view(session, world.account_id, world.config, world.now)
    assert view["balance"] == "-0.20" and view["overdrawn"] is True
    assert view["status"] == "paused_insufficient_credit" and view["low_balance"] is True


def test_fresh_account_gets_the_initial_credit_once(world: World) -> None:
    for minute in range(3):
        world.restart()
        world.tick(at(f"2026-03-02T10:0{minute}:00"))
    with world.db.read() as session:
        assert ledger.balance(session, world.account_id) == BillingConfig().initial_credit


def test_enforcement_off_never_pauses(world: World) -> None:
    world.config = BillingConfig(initial_credit=Decimal(0), enforce_credit=False)
    deployment = world.endpoint("chat", A100)
    world.start(deployment, at("2026-03-02T10:00:00"), A100)
    assert world.tick(at("2026-03-02T10:30:00")).paused == ()
    assert _state(world) == (Decimal("-0.50"), False, 1)
