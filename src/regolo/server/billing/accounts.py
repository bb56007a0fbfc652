"""An account's prepaid credit as the API shows it, and top-ups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from regolo.server.billing import ledger, meter, prices
from regolo.server.billing.config import BillingConfig
from regolo.server.billing.hours import month_of
from regolo.server.billing.money import money_text
from regolo.server.billing.pause import PAUSED_STATUS
from regolo.server.errors import InvalidRequest, NotFound
from regolo.server.store.tables import Account

MAX_TOPUP = Decimal("1000000")


def balance_view(
    session: Session, account_id: str, config: BillingConfig, now: datetime
) -> dict[str, Any]:
    state = ledger.open_account(session, account_id, config, now)
    books = prices.load_price_books(session)
    balance = ledger.balance(session, account_id)
    burn = meter.burn_rate(session, account_id, books, now)
    return {
        "object": "billing.balance",
        "account_id": account_id,
        "currency": prices.currency_of(books),
        "balance": money_text(balance),
        "overdrawn": balance < 0,
        "low_balance": balance <= config.low_balance_threshold,
        "low_balance_threshold": money_text(config.low_balance_threshold),
        "cost_per_hour": money_text(burn),
        "hours_remaining": int(balance / burn) if burn > 0 and balance > 0 else None,
        "status": PAUSED_STATUS if state.paused else "active",
        "paused_at": state.paused_at.isoformat() if state.paused_at else None,
        "pause_reason": state.pause_reason,
    }


@dataclass(frozen=True, kw_only=True)
class TopUp:
    account_id: str
    amount: Decimal
    idempotency_key: str | None
    created_by_key_id: str | None
    note: str | None = None


def top_up(
    session: Session, request: TopUp, config: BillingConfig, now: datetime
) -> dict[str, Any]:
    """Credit the account; a paused account resumes when it can pay an hour of its replicas."""
    _check_amount(request.amount)
    if session.get(Account, request.account_id) is None:
        raise NotFound(f"no account {request.account_id!r}", param="account_id")
    state = ledger.open_account(session, request.account_id, config, now)
    entry = ledger.post(
        session,
        ledger.Posting(
            account_id=request.account_id,
            key=f"topup:{request.idempotency_key or ledger.new_entry_key()}",
            kind=ledger.TOPUP,
            amount=request.amount,
            month=month_of(now),
            at=now,
            note=request.note,
            created_by_key_id=request.created_by_key_id,
        ),
    )
    books = prices.load_price_books(session)
    outcome = meter.enforce_account(session, state, books, config, now)
    return {
        "object": "billing.topup",
        "id": entry.id,
        "account_id": request.account_id,
        "amount": money_text(entry.amount),
        "created_at": entry.at.isoformat(),
        "note": entry.note,
        "resumed": outcome == "resumed",
        "balance": balance_view(session, request.account_id, config, now),
    }


def _check_amount(amount: Decimal) -> None:
    if not amount.is_finite() or amount <= 0:
        raise InvalidRequest("amount must be a positive number", param="amount")
    if amount > MAX_TOPUP:
        raise InvalidRequest(f"amount must be at most {MAX_TOPUP}", param="amount")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        raise InvalidRequest("amount has more than 6 decimal places", param="amount")
