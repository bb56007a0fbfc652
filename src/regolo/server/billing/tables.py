"""Billing tables: price-book history, hourly usage, the credit ledger, pauses, invoices.

Usage rows and ledger entries are append-only. ``billing_usage`` is unique per
(replica, hour index) and ledger entries per (account, key), so a meter that crashes and
re-runs, or two meters racing, can never charge an hour twice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from regolo.server.billing.money import Money
from regolo.server.store.tables import Base, utcnow


class PriceBookVersion(Base):
    """A price book as it was in force from ``effective_from`` (first seen by the meter)."""

    __tablename__ = "billing_price_books"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    effective_from: Mapped[datetime] = mapped_column(index=True)
    currency: Mapped[str] = mapped_column(String(8))
    prices: Mapped[dict[str, Any]] = mapped_column(JSON)  # instance type -> "0.50"


class BillingAccount(Base):
    """Per-account billing state; the balance itself is the sum of the ledger."""

    __tablename__ = "billing_accounts"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[datetime | None] = mapped_column(default=None)
    pause_reason: Mapped[str | None] = mapped_column(Text, default=None)
    low_balance: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    __tablename__ = "billing_ledger"
    __table_args__ = (UniqueConstraint("account_id", "key"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    key: Mapped[str] = mapped_column(String(200))  # idempotency: one entry per key
    kind: Mapped[str] = mapped_column(String(16))  # initial_credit | topup | usage
    amount: Mapped[Decimal] = mapped_column(Money)  # credits positive, debits negative
    month: Mapped[str] = mapped_column(String(7), index=True)  # the billing month it counts in
    at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    created_by_key_id: Mapped[str | None] = mapped_column(String(32), default=None)


class UsageHour(Base):
    """One charged hour of one replica, sealed once written."""

    __tablename__ = "billing_usage"
    __table_args__ = (UniqueConstraint("replica_id", "hour_index"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    endpoint_id: Mapped[str] = mapped_column(String(32), index=True)
    endpoint_name: Mapped[str] = mapped_column(String(100))
    deployment_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(64))
    replica_id: Mapped[str] = mapped_column(String(32))
    hour_index: Mapped[int] = mapped_column(Integer)
    hour_start: Mapped[datetime] = mapped_column()
    instance_type: Mapped[str] = mapped_column(String(64))
    price_book_version: Mapped[str] = mapped_column(String(64))
    price_per_hour: Mapped[Decimal] = mapped_column(Money)
    billed_month: Mapped[str] = mapped_column(String(7), index=True)
    charged_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeterCursor(Base):
    """How many hours of a replica are charged; ``closed`` once it stopped and is settled."""

    __tablename__ = "billing_meter_cursors"
    replica_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hours_charged: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class PausedDeployment(Base):
    """A deployment scaled to zero for lack of credit, and the replicas to give back."""

    __tablename__ = "billing_paused_deployments"
    deployment_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    replicas_before: Mapped[int] = mapped_column(Integer)


class Invoice(Base):
    """A month's final invoice: an immutable snapshot of its lines and totals."""

    __tablename__ = "billing_invoices"
    __table_args__ = (UniqueConstraint("account_id", "month"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))
    total: Mapped[Decimal] = mapped_column(Money)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
