"""A bounded in-memory buffer of per-request usage records, drained by the metrics flusher.

``record`` never blocks or awaits: when the flusher falls behind, new records are
dropped and counted rather than slowing the response path or growing memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from regolo.server.specs import UsageRecord


class UsageBuffer:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self.dropped = 0
        self._records: deque[UsageRecord] = deque()
        # Called with every record on the gateway's loop; must be cheap (autoscaler, canary).
        self.listeners: list[Callable[[UsageRecord], None]] = []

    def __len__(self) -> int:
        return len(self._records)

    def record(self, usage: UsageRecord) -> None:
        for listener in self.listeners:
            listener(usage)
        if len(self._records) >= self.capacity:
            self.dropped += 1
            return
        self._records.append(usage)

    def drain(self, max_records: int | None = None) -> list[UsageRecord]:
        """Remove and return up to ``max_records`` records, oldest first."""
        count = len(self._records) if max_records is None else min(max_records, len(self._records))
        popleft = self._records.popleft
        return [popleft() for _ in range(count)]
