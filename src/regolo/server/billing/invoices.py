"""Invoices: one per account and month, built from its charged hours and its ledger.

A month's invoice is issued once the month is over (plus a grace period) and then never
changes; the running month can be previewed at any time. Lines group hours by endpoint,
version, instance type and rate; amounts are rounded to the cent per line and the
subtotal is the sum of the printed lines.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.billing import ledger, prices
from regolo.server.billing.hours import month_bounds, month_of
from regolo.server.billing.money import cents, money_text
from regolo.server.billing.tables import Invoice, LedgerEntry, UsageHour
from regolo.server.errors import NotFound
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Account

PREVIEW = "preview"


@dataclass(frozen=True, kw_only=True)
class InvoiceLine:
    endpoint_id: str
    endpoint: str
    version: str
    instance_type: str
    price_book_version: str
    price_per_hour: Decimal
    hours: int

    @property
    def amount(self) -> Decimal:
        return cents(self.price_per_hour * self.hours)

    def as_json(self) -> dict[str, Any]:
        return {
            "endpoint_id": self.endpoint_id,
            "endpoint": self.endpoint,
            "version": self.version,
            "instance_type": self.instance_type,
            "price_book_version": self.price_book_version,
            "hours": self.hours,
            "price_per_hour": money_text(self.price_per_hour),
            "amount": money_text(self.amount),
        }


def invoice_lines(usage: list[UsageHour]) -> list[InvoiceLine]:
    hours: dict[tuple[str, str, str, str, str, Decimal], int] = defaultdict(int)
    for row in usage:
        key = (
            row.endpoint_id,
            row.endpoint_name,
            row.version,
            row.instance_type,
            row.price_book_version,
            row.price_per_hour,
        )
        hours[key] += 1
    lines = [
        InvoiceLine(
            endpoint_id=key[0],
            endpoint=key[1],
            version=key[2],
            instance_type=key[3],
            price_book_version=key[4],
            price_per_hour=key[5],
            hours=count,
        )
        for key, count in hours.items()
    ]
    return sorted(lines, key=lambda line: (line.endpoint, line.version, line.price_book_version))


@dataclass(frozen=True, kw_only=True)
class Balances:
    opening: Decimal  # before the month
    credits_added: Decimal  # top-ups and grants in the month
    closing: Decimal  # after the month's entries


def invoice_document(
    *,
    invoice_id: str,
    status: str,
    account_id: str,
    account_name: str,
    month: str,
    currency: str,
    lines: list[InvoiceLine],
    balances: Balances,
    issued_at: datetime,
) -> dict[str, Any]:
    """The invoice as JSON: the one source the HTML page and the PDF render."""
    subtotal = sum((line.amount for line in lines), Decimal(0))
    available = max(Decimal(0), balances.opening + balances.credits_added)
    applied = min(subtotal, cents(available))
    start, end = month_bounds(month)
    return {
        "object": "invoice",
        "id": invoice_id,
        "status": status,
        "account_id": account_id,
        "account_name": account_name,
        "month": month,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "currency": currency,
        "issued_at": issued_at.isoformat(),
        "lines": [line.as_json() for line in lines],
        "total_hours": sum(line.hours for line in lines),
        "subtotal": money_text(subtotal),
        "opening_balance": money_text(cents(balances.opening)),
        "credits_added": money_text(cents(balances.credits_added)),
        "credits_applied": money_text(applied),
        "amount_due": money_text(subtotal - applied),
        "closing_balance": money_text(cents(balances.closing)),
    }


def compute(
    session: Session, account_id: str, month: str, *, invoice_id: str, status: str, now: datetime
) -> dict[str, Any]:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("no such account")
    usage = list(
        session.scalars(
            select(UsageHour).where(
                UsageHour.account_id == account_id, UsageHour.billed_month == month
            )
        )
    )
    balances = Balances(
        opening=_balance_before(session, account_id, month),
        credits_added=ledger.credits_in_month(session, account_id, month),
        closing=ledger.balance(session, account_id, through_month=month),
    )
    return invoice_document(
        invoice_id=invoice_id,
        status=status,
        account_id=account_id,
        account_name=account.name,
        month=month,
        currency=prices.currency_of(prices.load_price_books(session)),
        lines=invoice_lines(usage),
        balances=balances,
        issued_at=now,
    )


def _balance_before(session: Session, account_id: str, month: str) -> Decimal:
    entries = session.scalars(
        select(LedgerEntry.amount).where(
            LedgerEntry.account_id == account_id, LedgerEntry.month < month
        )
    )
    return sum(entries, Decimal(0))


def finalize(session: Session, account_id: str, month: str, now: datetime) -> Invoice:
    """Issue the month's invoice once; an issued invoice is returned unchanged."""
    existing = session.scalar(
        select(Invoice).where(Invoice.account_id == account_id, Invoice.month == month)
    )
    if existing is not None:
        return existing
    invoice_id = new_id("inv")
    document = compute(session, account_id, month, invoice_id=invoice_id, status="final", now=now)
    invoice = Invoice(
        id=invoice_id,
        account_id=account_id,
        month=month,
        total=Decimal(document["subtotal"]),
        document=document,
        issued_at=now,
    )
    session.add(invoice)
    session.flush()
    return invoice


def finalize_due(session: Session, *, before_month: str, now: datetime) -> list[Invoice]:
    """Issue every missing invoice of a month before ``before_month`` with ledger activity."""
    active = session.execute(
        select(LedgerEntry.account_id, LedgerEntry.month)
        .where(LedgerEntry.month < before_month)
        .distinct()
    ).all()
    issued = set(session.execute(select(Invoice.account_id, Invoice.month)).tuples().all())
    return [
        finalize(session, account_id, month, now)
        for account_id, month in sorted(active)
        if (account_id, month) not in issued
    ]


def preview(session: Session, account_id: str, now: datetime) -> dict[str, Any]:
    return compute(session, account_id, month_of(now), invoice_id=PREVIEW, status=PREVIEW, now=now)


def get(session: Session, account_id: str, invoice_id: str, now: datetime) -> dict[str, Any]:
    """An issued invoice of the account, or ``preview`` for the running month."""
    if invoice_id == PREVIEW:
        return preview(session, account_id, now)
    invoice = session.scalar(
        select(Invoice).where(Invoice.account_id == account_id, Invoice.id == invoice_id)
    )
    if invoice is None:
        raise NotFound(f"no invoice {invoice_id!r}", param="invoice_id")
    return dict(invoice.document)


def list_all(session: Session, account_id: str, now: datetime) -> list[dict[str, Any]]:
    """The running month's preview first, then issued invoices, newest first."""
    issued = session.scalars(
        select(Invoice).where(Invoice.account_id == account_id).order_by(Invoice.month.desc())
    )
    return [preview(session, account_id, now), *(dict(invoice.document) for invoice in issued)]
