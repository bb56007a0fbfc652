"""The hour arithmetic: charged from the first hour, every started hour, none twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regolo.server.billing.hours import (
    billable_hours,
    month_bounds,
    month_of,
    next_month,
    parse_month,
)

T0 = datetime(2026, 1, 31, 22, 17, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("minutes_run", "hours"),
    [(0, 1), (1, 1), (59, 1), (60, 1), (61, 2), (120, 2), (121, 3), (168, 3)],
)
def test_a_stopped_replica(minutes_run: int, hours: int) -> None:
    assert billable_hours(T0, T0 + minutes_run * MIN, T0 + timedelta(days=1)) == hours


def test_a_running_replica_pays_each_hour_once_it_starts() -> None:
    assert billable_hours(T0, None, T0) == 1
    assert billable_hours(T0, None, T0 + 60 * MIN) == 1  # the boundary itself: not yet
    assert billable_hours(T0, None, T0 + 60 * MIN + timedelta(seconds=1)) == 2
    assert billable_hours(T0, T0 + 300 * MIN, T0 + 90 * MIN) == 2  # seen before its stop


instants = st.integers(min_value=0, max_value=72 * 60 * 60)


@settings(max_examples=300, deadline=None)
@given(run_seconds=instants, ticks=st.lists(instants, max_size=12))
def test_any_tick_schedule_charges_the_same_hours(run_seconds: int, ticks: list[int]) -> None:
    """Charging up to billable_hours at each tick (a cursor) ends at the same total as one
    late tick, never goes back, and never exceeds the final count."""
    stop = T0 + timedelta(seconds=run_seconds)
    final = billable_hours(T0, stop, stop + timedelta(days=4))
    charged = 0
    for offset in sorted(ticks):
        now = T0 + timedelta(seconds=offset)
        seen_stop = stop if stop <= now else None
        due = billable_hours(T0, seen_stop, now)
        assert due >= charged and due <= final
        charged = due
    charged = max(charged, billable_hours(T0, stop, stop + timedelta(days=4)))
    assert charged == final == max(1, -(-run_seconds // 3600))


def test_months() -> None:
    assert month_of(datetime(2026, 1, 31, 23, 59, tzinfo=UTC)) == "2026-01"
    assert month_bounds("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert next_month("2026-01") == "2026-02" and next_month("2026-12") == "2027-01"
    for bad in ("2026-13", "2026-1", "26-01-01", "abcd-ef", ""):
        with pytest.raises(ValueError):
            parse_month(bad)
