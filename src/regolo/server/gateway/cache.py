"""Exact-match cache of non-streamed responses to deterministic requests.

Keys carry the account, the endpoint and the deployment, so an entry is never
shared across accounts and a new version never serves an old answer. Memory is
bounded in bytes (least recently used goes first) and entries expire after a TTL.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CacheKey = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class CachedResponse:
    body: bytes
    content_type: bytes
    expires_at: float


def is_deterministic(payload: dict[str, Any]) -> bool:
    if payload.get("stream"):
        return False
    seed = payload.get("seed")
    return payload.get("temperature") == 0 or (isinstance(seed, int) and not isinstance(seed, bool))


def cache_key(
    account_id: str, endpoint_id: str, deployment_id: str, payload: dict[str, Any]
) -> CacheKey:
    normalised = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (account_id, endpoint_id, deployment_id, normalised)


class ResponseCache:
    def __init__(
        self,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self.size_bytes = 0
        self._clock = clock
        self._entries: OrderedDict[CacheKey, CachedResponse] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: CacheKey, body: bytes, content_type: bytes) -> None:
        size = _size(key, body)
        if size > self.max_bytes // 8:
            return  # one huge answer must not flush the whole cache
        if key in self._entries:
            self._remove(key)
        self._entries[key] = CachedResponse(body, content_type, self._clock() + self.ttl_seconds)
        self.size_bytes += size
        while self.size_bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))

    def _remove(self, key: CacheKey) -> None:
        entry = self._entries.pop(key)
        self.size_bytes -= _size(key, entry.body)


def _size(key: CacheKey, body: bytes) -> int:
    return len(key[3]) + len(body) + 256  # rough per-entry overhead
