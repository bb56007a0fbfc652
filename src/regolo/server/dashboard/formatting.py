"""Pure display helpers used by the templates (sizes, counts, money, percentages)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


def human_bytes(size_bytes: int | None) -> str:
    if not size_bytes:
        return "-"
    size = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def human_count(count: int | None) -> str:
    if not count:
        return "-"
    for divisor, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if count >= divisor:
            return f"{count / divisor:.1f}{suffix}"
    return str(count)


def money(amount: Any, currency: str | None = None) -> str:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return "-"
    text = f"{value:,.2f}" if value >= 1 or value == 0 else f"{value:,.4f}"
    return f"{text} {currency}" if currency else text


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.0f}%"


def download_percent(progress: dict[str, int] | None) -> int:
    if not progress or not progress.get("bytes_total"):
        return 0
    return min(100, int(progress["bytes_done"] * 100 / progress["bytes_total"]))


FILTERS = {
    "human_bytes": human_bytes,
    "human_count": human_count,
    "money": money,
    "percent": percent,
    "download_percent": download_percent,
}
