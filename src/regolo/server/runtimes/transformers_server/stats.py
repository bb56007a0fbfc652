"""Counters that the engine keeps and ``GET /stats`` shows (tests assert that batching happened)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass


@dataclass
class EngineStats:
    requests_total: int = 0
    requests_failed: int = 0
    generated_tokens_total: int = 0
    forward_passes_total: int = 0
    running: int = 0
    max_batch_size_seen: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def record_batch(self, size: int, generated_tokens: int) -> None:
        with self._lock:
            self.forward_passes_total += 1
            self.generated_tokens_total += generated_tokens
            self.max_batch_size_seen = max(self.max_batch_size_seen, size)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return asdict(self)

    def record_request(self, *, failed: bool = False) -> None:
        with self._lock:
            self.requests_total += 1
            self.requests_failed += int(failed)

    def set_running(self, running: int) -> None:
        with self._lock:
            self.running = running
