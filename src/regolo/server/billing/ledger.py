"""The prepaid credit ledger: append-only entries; the balance is their sum.

Every entry has a key unique within its account (``initial-credit``,
``usage:<replica>:<hour>``, ``topup:<idempotency key>``), so replaying a write never
moves money twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from regolo.server.billing.config import BillingConfig
from regolo.server.billing.hours import month_of
from regolo.server.billing.tables import BillingAccount, LedgerEntry
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Account

INITIAL_CREDIT = "initial_credit"
TOPUP = "topup"
USAGE = "usage"


@dataclass(frozen=True, kw_only=True)
class Posting:
    account_id: str
    key: str
    kind: str
    amount: Decimal  # credits positive, debits negative
    month: str
    at: datetime
    note: str | None = None
    created_by_key_id: str | None = None


def post(session: Session, posting: Posting) -> LedgerEntry:
    """Append ``posting`` unless its key was posted before; returns the entry either way."""
    existing = session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.account_id == posting.account_id, LedgerEntry.key == posting.key
        )
    )
    if existing is not None:
        return existing
    entry = LedgerEntry(id=new_id("led"), **vars(posting))
    session.add(entry)
    session.flush()
    return entry


def balance(session: Session, account_id: str, *, through_month: str | None = None) -> Decimal:
    """The sum of the ledger (up to and including ``through_month`` when given)."""
    query = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.account_id == account_id
    )
    if through_month is not None:
        query = query.where(LedgerEntry.month <= through_month)
    total = session.scalar(query)
    return Decimal(total or 0)


def credits_in_month(session: Session, account_id: str, month: str) -> Decimal:
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.month == month,
            LedgerEntry.amount > 0,
        )
    )
    return Decimal(total or 0)


def ensure_accounts(session: Session, config: BillingConfig, now: datetime) -> None:
    """Give every account its billing row and, once, its initial credit."""
    known = set(session.scalars(select(BillingAccount.account_id)))
    for account_id in session.scalars(select(Account.id)):
        if account_id not in known:
            open_account(session, account_id, config, now)


def open_account(
    session: Session, account_id: str, config: BillingConfig, now: datetime
) -> BillingAccount:
    state = session.get(BillingAccount, account_id)
    if state is not None:
        return state
    state = BillingAccount(account_id=account_id, created_at=now)
    session.add(state)
    if config.initial_credit > 0:
        post(
            session,
            Posting(
                account_id=account_id,
                key="initial-credit",
                kind=INITIAL_CREDIT,
                amount=config.initial_credit,
                month=month_of(now),
                at=now,
                note="initial credit",
            ),
        )
    session.flush()
    return state


def new_entry_key() -> str:
    return new_id("k")
