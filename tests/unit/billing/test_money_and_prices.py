"""Money in micro-units, and the price in force when an hour starts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from regolo.server.billing.money import cents, from_micros, money_text, to_micros
from regolo.server.billing.prices import BEGINNING, PriceBook, rate_at

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)


def test_micros_round_trip() -> None:
    for text in ("0", "0.5", "0.013", "17.60", "-105.6", "123456.123456"):
        assert from_micros(to_micros(Decimal(text))) == Decimal(text)


def test_display() -> None:
    assert money_text(Decimal("360")) == "360.00"
    assert money_text(Decimal("0.013")) == "0.013"
    assert money_text(Decimal("-0.2")) == "-0.20"
    assert cents(Decimal("0.005")) == Decimal("0.01")


BOOKS = [
    PriceBook(
        version="v1",
        effective_from=BEGINNING,
        currency="USD",
        prices={"a": Decimal("0.50"), "old": Decimal("0.10")},
    ),
    PriceBook(version="v2", effective_from=FEB, currency="USD", prices={"a": Decimal("0.60")}),
]


def test_rate_in_force() -> None:
    assert (
        rate_at(BOOKS, "a", JAN).price_book_version,
        rate_at(BOOKS, "a", JAN).price_per_hour,
    ) == (
        "v1",
        Decimal("0.50"),
    )
    assert rate_at(BOOKS, "a", FEB).price_per_hour == Decimal("0.60")
    # Dropped from the newer book: keeps its last known price.
    assert rate_at(BOOKS, "old", FEB).price_per_hour == Decimal("0.10")
    assert rate_at(BOOKS, "never", FEB).price_per_hour == Decimal(0)
    assert rate_at([], "a", FEB).price_per_hour == Decimal(0)
