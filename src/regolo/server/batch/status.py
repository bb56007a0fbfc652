"""Batch statuses, as the OpenAI Batch API names them, and which ones are final."""

from __future__ import annotations

import enum


class BatchStatus(enum.StrEnum):
    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


class LineState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"


FINAL = frozenset(
    {BatchStatus.FAILED, BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
)
# Past validation and not yet final: these count against an account's running batches.
ACTIVE = frozenset({BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING, BatchStatus.CANCELLING})
# No new line is claimed in these; finalize runs once no line is in flight.
STOPPING = frozenset({BatchStatus.FINALIZING, BatchStatus.CANCELLING})

UNFINISHED = frozenset(set(BatchStatus) - FINAL)

_WINDOW_UNITS = {"h": 3600, "d": 86400}
MAX_WINDOW_SECONDS = 7 * 86400


def window_seconds(window: str) -> int | None:
    """``"24h"`` -> 86400; ``None`` for anything else than ``<n>h`` / ``<n>d`` up to 7 days."""
    number, unit = window[:-1], window[-1:]
    if not number.isdigit() or unit not in _WINDOW_UNITS or len(number) > 4:
        return None
    seconds = int(number) * _WINDOW_UNITS[unit]
    return seconds if 0 < seconds <= MAX_WINDOW_SECONDS else None
