"""A month's charged hours, as JSON (with per-endpoint totals) or CSV."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.billing import prices
from regolo.server.billing.money import cents, money_text
from regolo.server.billing.tables import UsageHour

CSV_COLUMNS = (
    "hour_start",
    "endpoint",
    "endpoint_id",
    "version",
    "replica_id",
    "instance_type",
    "price_book_version",
    "price_per_hour",
    "billed_month",
)


def month_usage(session: Session, account_id: str, month: str) -> list[UsageHour]:
    return list(
        session.scalars(
            select(UsageHour)
            .where(UsageHour.account_id == account_id, UsageHour.billed_month == month)
            .order_by(UsageHour.hour_start, UsageHour.replica_id)
        )
    )


def usage_json(session: Session, account_id: str, month: str) -> dict[str, Any]:
    rows = month_usage(session, account_id, month)
    hours: dict[tuple[str, str], int] = defaultdict(int)
    amounts: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        hours[(row.endpoint_id, row.endpoint_name)] += 1
        amounts[(row.endpoint_id, row.endpoint_name)] += row.price_per_hour
    total = sum((row.price_per_hour for row in rows), Decimal(0))
    return {
        "object": "billing.usage",
        "month": month,
        "currency": prices.currency_of(prices.load_price_books(session)),
        "total_hours": len(rows),
        "total_amount": money_text(cents(total)),
        "by_endpoint": [
            {
                "endpoint_id": key[0],
                "endpoint": key[1],
                "hours": count,
                "amount": money_text(cents(amounts[key])),
            }
            for key, count in sorted(hours.items(), key=lambda item: item[0][1])
        ],
        "data": [_row_json(row) for row in rows],
    }


def _row_json(row: UsageHour) -> dict[str, Any]:
    return {
        "hour_start": row.hour_start.isoformat(),
        "endpoint": row.endpoint_name,
        "endpoint_id": row.endpoint_id,
        "version": row.version,
        "replica_id": row.replica_id,
        "instance_type": row.instance_type,
        "price_book_version": row.price_book_version,
        "price_per_hour": money_text(row.price_per_hour),
        "billed_month": row.billed_month,
    }


def usage_csv(session: Session, account_id: str, month: str) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in month_usage(session, account_id, month):
        writer.writerow(_row_json(row))
    return buffer.getvalue()
