"""The meter: charges every started replica hour once, enforces credit, closes months.

Each tick is idempotent. A cursor per replica says how many of its hours are charged,
and ``billing_usage`` is unique per (replica, hour), so a tick that crashes half-way
rolls back and the next one (after a restart too) charges exactly what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from regolo.server.billing import invoices, ledger, pause, prices
from regolo.server.billing.catalog import Catalog
from regolo.server.billing.config import BillingConfig
from regolo.server.billing.hours import billable_hours, hour_start, month_of, next_hour_start
from regolo.server.billing.policy import decide
from regolo.server.billing.tables import BillingAccount, Invoice, MeterCursor, UsageHour
from regolo.server.store.database import Database
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Deployment, Endpoint, Replica

log = logging.getLogger("regolo.billing")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class TickResult:
    hours_charged: int
    paused: tuple[str, ...]
    resumed: tuple[str, ...]
    invoices: tuple[str, ...]

    @property
    def desired_state_changed(self) -> bool:
        return bool(self.paused or self.resumed)


class Meter:
    def __init__(
        self,
        db: Database,
        catalog: Callable[[], Catalog],
        config: BillingConfig,
        clock: Clock = _utcnow,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.config = config
        self.clock = clock

    def tick(self) -> TickResult:
        """One idempotent pass; a race with another meter ends it early, losing nothing."""
        now = self.clock()
        try:
            return self._tick(now)
        except IntegrityError:
            # Another meter (a second controller, a test) wrote the same hour or invoice
            # first: this transaction rolled back and the next tick finishes the job.
            log.info("billing tick raced another meter; retrying next tick")
            return TickResult(hours_charged=0, paused=(), resumed=(), invoices=())

    def _tick(self, now: datetime) -> TickResult:
        with self.db.write() as session:
            prices.record_price_book(session, self.catalog(), now)
            ledger.ensure_accounts(session, self.config, now)
        with self.db.write() as session:
            charged = charge_started_hours(session, now)
        paused, resumed = self._enforce_credit(now)
        issued = self._close_months(now)
        return TickResult(hours_charged=charged, paused=paused, resumed=resumed, invoices=issued)

    def _enforce_credit(self, now: datetime) -> tuple[tuple[str, ...], tuple[str, ...]]:
        paused: list[str] = []
        resumed: list[str] = []
        with self.db.write() as session:
            current = prices.load_price_books(session)
            for state in session.scalars(select(BillingAccount)).all():
                outcome = enforce_account(session, state, current, self.config, now)
                if outcome == "paused":
                    paused.append(state.account_id)
                elif outcome == "resumed":
                    resumed.append(state.account_id)
        return tuple(paused), tuple(resumed)

    def _close_months(self, now: datetime) -> tuple[str, ...]:
        cutoff = month_of(now - timedelta(seconds=self.config.invoice_grace_seconds))
        with self.db.write() as session:
            issued = invoices.finalize_due(session, before_month=cutoff, now=now)
        return tuple(invoice.id for invoice in issued)


def enforce_account(
    session: Session,
    state: BillingAccount,
    books: list[prices.PriceBook],
    config: BillingConfig,
    now: datetime,
) -> str | None:
    """Pause, resume or hold one account; returns "paused", "resumed" or None."""
    account_id = state.account_id
    balance = ledger.balance(session, account_id)
    lead = now + timedelta(seconds=config.pause_lead_seconds)
    decision = decide(
        balance=balance,
        due_soon=due_before(session, account_id, books, lead),
        paused=state.paused,
        resume_cost=resume_cost(session, account_id, books, now),
        low_balance_threshold=config.low_balance_threshold,
        enforce=config.enforce_credit,
    )
    if decision.low_balance and not state.low_balance:
        log.warning("account %s: prepaid balance is low (%s)", account_id, balance)
    state.low_balance = decision.low_balance
    if decision.pause:
        log.warning("account %s: pausing endpoints, balance %s", account_id, balance)
        pause.pause_account(session, account_id, now)
        return "paused"
    if decision.resume:
        pause.resume_account(session, account_id)
        return "resumed"
    if state.paused:
        pause.hold(session, account_id)
    return None


def charge_started_hours(session: Session, now: datetime) -> int:
    """Charge every started, uncharged replica hour; returns how many were charged."""
    books = prices.load_price_books(session)
    rows = session.execute(
        select(Replica, Deployment, Endpoint, MeterCursor)
        .join(Deployment, Deployment.id == Replica.deployment_id)
        .join(Endpoint, Endpoint.id == Deployment.endpoint_id)
        .outerjoin(MeterCursor, MeterCursor.replica_id == Replica.id)
        .where(
            Replica.started_at.is_not(None),
            Replica.started_at <= now,
            (MeterCursor.closed.is_(None)) | (MeterCursor.closed.is_(False)),
        )
    ).all()
    charged = 0
    for replica, deployment, endpoint, cursor in rows:
        if cursor is None:
            cursor = MeterCursor(replica_id=replica.id, hours_charged=0, closed=False)
            session.add(cursor)
        assert replica.started_at is not None
        due = billable_hours(replica.started_at, replica.stopped_at, now)
        for index in range(cursor.hours_charged, due):
            _charge_hour(session, replica, deployment, endpoint, index, books, now)
            charged += 1
        cursor.hours_charged = max(cursor.hours_charged, due)
        cursor.closed = replica.stopped_at is not None and replica.stopped_at <= now
    session.flush()
    return charged


def _charge_hour(
    session: Session,
    replica: Replica,
    deployment: Deployment,
    endpoint: Endpoint,
    index: int,
    books: list[prices.PriceBook],
    now: datetime,
) -> None:
    assert replica.started_at is not None
    starts = hour_start(replica.started_at, index)
    rate = prices.rate_at(books, replica.instance_type, starts)
    month = _open_month(session, endpoint.account_id, month_of(starts), now)
    usage = UsageHour(
        id=new_id("use"),
        account_id=endpoint.account_id,
        endpoint_id=endpoint.id,
        endpoint_name=endpoint.name,
        deployment_id=deployment.id,
        version=deployment.version,
        replica_id=replica.id,
        hour_index=index,
        hour_start=starts,
        instance_type=replica.instance_type,
        price_book_version=rate.price_book_version,
        price_per_hour=rate.price_per_hour,
        billed_month=month,
        charged_at=now,
    )
    session.add(usage)
    ledger.post(
        session,
        ledger.Posting(
            account_id=endpoint.account_id,
            key=f"usage:{replica.id}:{index}",
            kind=ledger.USAGE,
            amount=-rate.price_per_hour,
            month=month,
            at=now,
            note=f"{endpoint.name} {deployment.version} {replica.instance_type} hour {index + 1}",
        ),
    )


def _open_month(session: Session, account_id: str, month: str, now: datetime) -> str:
    """The hour's own month, unless its invoice is already issued: then the current one."""
    issued = session.scalar(
        select(Invoice.id).where(Invoice.account_id == account_id, Invoice.month == month)
    )
    return month if issued is None else month_of(now)


def due_before(
    session: Session, account_id: str, books: list[prices.PriceBook], until: datetime
) -> Decimal:
    """The price of every live replica hour of the account that starts by ``until``."""
    total = Decimal(0)
    for replica, cursor in _live_replicas(session, account_id):
        assert replica.started_at is not None
        charged = cursor.hours_charged if cursor is not None else 0
        starts = next_hour_start(replica.started_at, charged)
        if starts <= until:
            total += prices.rate_at(books, replica.instance_type, starts).price_per_hour
    return total


def resume_cost(
    session: Session, account_id: str, books: list[prices.PriceBook], now: datetime
) -> Decimal:
    """One hour of the replicas a resume would start again."""
    total = Decimal(0)
    for saved in pause.saved_deployments(session, account_id):
        deployment = session.get(Deployment, saved.deployment_id)
        endpoint = session.get(Endpoint, deployment.endpoint_id) if deployment else None
        if endpoint is not None:
            rate = prices.rate_at(books, endpoint.instance_type, now).price_per_hour
            total += rate * saved.replicas_before
    return total


def _live_replicas(session: Session, account_id: str) -> list[tuple[Replica, MeterCursor | None]]:
    rows = session.execute(
        select(Replica, MeterCursor)
        .join(Deployment, Deployment.id == Replica.deployment_id)
        .join(Endpoint, Endpoint.id == Deployment.endpoint_id)
        .outerjoin(MeterCursor, MeterCursor.replica_id == Replica.id)
        .where(
            Endpoint.account_id == account_id,
            Replica.started_at.is_not(None),
            Replica.stopped_at.is_(None),
        )
    ).all()
    return [(replica, cursor) for replica, cursor in rows]


def burn_rate(
    session: Session, account_id: str, books: list[prices.PriceBook], now: datetime
) -> Decimal:
    """What the account's live replicas cost per hour at today's prices."""
    return sum(
        (
            prices.rate_at(books, replica.instance_type, now).price_per_hour
            for replica, _ in _live_replicas(session, account_id)
        ),
        Decimal(0),
    )
