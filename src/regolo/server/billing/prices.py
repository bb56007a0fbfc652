"""Which price was in force when: the history of price books the meter has seen.

A price book (``catalog.Catalog``) is recorded the first time the meter sees its
version or prices; it is in force from then until the next one. An hour is charged at
the rate in force when that hour starts, so a meter catching up after downtime still
charges old hours at old prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.billing.catalog import Catalog
from regolo.server.billing.tables import PriceBookVersion
from regolo.server.store.ids import new_id

# The first price book ever recorded also covers anything metered from before it.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class PriceBook:
    version: str
    effective_from: datetime
    currency: str
    prices: dict[str, Decimal]  # instance type -> price per hour


@dataclass(frozen=True, kw_only=True)
class Rate:
    price_book_version: str
    price_per_hour: Decimal


def catalog_prices(catalog: Catalog) -> dict[str, Decimal]:
    return {instance.id: instance.price_per_hour for instance in catalog.instance_types}


def load_price_books(session: Session) -> list[PriceBook]:
    rows = session.scalars(select(PriceBookVersion).order_by(PriceBookVersion.effective_from))
    return [
        PriceBook(
            version=row.version,
            effective_from=row.effective_from,
            currency=row.currency,
            prices={name: Decimal(price) for name, price in row.prices.items()},
        )
        for row in rows
    ]


def record_price_book(session: Session, catalog: Catalog, now: datetime) -> bool:
    """Record ``catalog`` as in force from ``now`` unless it already is; True if recorded."""
    books = load_price_books(session)
    prices = catalog_prices(catalog)
    if books and books[-1].version == catalog.version and books[-1].prices == prices:
        return False
    session.add(
        PriceBookVersion(
            id=new_id("pb"),
            version=catalog.version,
            effective_from=now if books else BEGINNING,
            currency=catalog.currency,
            prices={name: str(price) for name, price in prices.items()},
        )
    )
    session.flush()
    return True


def rate_at(books: list[PriceBook], instance_type: str, at: datetime) -> Rate:
    """The rate of ``instance_type`` in force at ``at`` (books sorted by effective_from).

    An instance type the book in force lacks (it was dropped) keeps its last known price;
    one no book ever had costs nothing, rather than blocking the meter.
    """
    in_force = [book for book in books if book.effective_from <= at] or books[:1]
    if not in_force:
        return Rate(price_book_version="none", price_per_hour=Decimal(0))
    current = in_force[-1]
    if instance_type in current.prices:
        return Rate(
            price_book_version=current.version, price_per_hour=current.prices[instance_type]
        )
    for book in reversed(books):
        if instance_type in book.prices:
            return Rate(price_book_version=book.version, price_per_hour=book.prices[instance_type])
    return Rate(price_book_version=current.version, price_per_hour=Decimal(0))


def currency_of(books: list[PriceBook]) -> str:
    return books[-1].currency if books else "USD"
