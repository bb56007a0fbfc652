"""Hour arithmetic of hourly billing: pure functions of replica lifetimes.

"Charged from first hour": a replica's hour ``k`` covers ``[start + k h, start + (k+1) h)``
of its own lifetime. Hour 0 is charged as soon as the replica starts; hour ``k >= 1`` is
charged once its first instant has passed while the replica was still running. A stop
exactly on an hour boundary does not start a new hour. Each charged hour belongs to the
calendar month (UTC) in which it starts.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)


def billable_hours(started_at: datetime, stopped_at: datetime | None, now: datetime) -> int:
    """How many hours of this replica have started by ``now`` (at least 1 once started)."""
    end = now if stopped_at is None else min(stopped_at, now)
    if end <= started_at:
        return 1
    return max(1, math.ceil((end - started_at) / HOUR))


def hour_start(started_at: datetime, hour_index: int) -> datetime:
    return started_at + hour_index * HOUR


def next_hour_start(started_at: datetime, hours_charged: int) -> datetime:
    """When the next uncharged hour of a live replica begins."""
    return hour_start(started_at, hours_charged)


def month_of(at: datetime) -> str:
    """``YYYY-MM`` of an instant, in UTC."""
    return at.astimezone(UTC).strftime("%Y-%m")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``[first instant, first instant of the next month)`` of ``YYYY-MM``, in UTC."""
    start = parse_month(month)
    year, index = divmod(start.month, 12)
    return start, start.replace(year=start.year + year, month=index + 1)


def parse_month(month: str) -> datetime:
    """``YYYY-MM`` to its first instant; ValueError for anything else."""
    if len(month) != 7 or month[4] != "-":
        raise ValueError(f"month must look like 2026-01, not {month!r}")
    return datetime(int(month[:4]), int(month[5:]), 1, tzinfo=UTC)


def next_month(month: str) -> str:
    return month_of(month_bounds(month)[1])
