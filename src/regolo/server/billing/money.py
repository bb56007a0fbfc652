"""Money: ``Decimal`` in code, whole micro-units (1e-6 of the currency) in the store.

Integers keep sums exact in SQL on SQLite and PostgreSQL alike (SQLite has no decimal
type); six places are enough for any hourly rate a price book can hold.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.types import TypeDecorator

MICROS = Decimal("0.000001")
CENTS = Decimal("0.01")
_SCALE = 1_000_000


def to_micros(amount: Decimal) -> int:
    return int(amount.quantize(MICROS, rounding=ROUND_HALF_EVEN) * _SCALE)


def from_micros(micros: int) -> Decimal:
    return (Decimal(micros) / _SCALE).quantize(MICROS)


def cents(amount: Decimal) -> Decimal:
    """Rounded to the cent, half up, as on a printed invoice."""
    return amount.quantize(CENTS, rounding=ROUND_HALF_UP)


def money_text(amount: Decimal) -> str:
    """A wire form of an amount: cents always, more places only when they are not zero."""
    exact = amount.quantize(MICROS).normalize()
    rounded = cents(amount)
    return str(rounded) if exact == rounded else f"{exact:f}"


class Money(TypeDecorator[Decimal]):
    """A ``Decimal`` column stored as micro-units in a BIGINT."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> int | None:
        return None if value is None else to_micros(Decimal(value))

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        return None if value is None else from_micros(int(value))
