"""Admission limits: per key requests/min and tokens/min, per endpoint concurrency and queue.

Rates are token buckets holding a minute's allowance, so a burst admits exactly the
limit (S13). Tokens are only known once a response is back, so the tokens bucket is
debited afterwards and only admits while it is positive: a key overshoots its budget
by at most the requests already in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from regolo.server.errors import RateLimited, Unavailable
from regolo.server.specs import Principal

Clock = Callable[[], float]
Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class TokenBucket:
    per_minute: int
    level: float
    updated: float

    def refill(self, now: float) -> None:
        cap = self.per_minute
        level = self.level + (now - self.updated) * cap / 60.0
        self.level = level if level < cap else float(cap)  # min() without a builtin call
        self.updated = now

    def seconds_until(self, amount: float) -> float:
        return max(0.0, (amount - self.level) * 60.0 / self.per_minute)


def _bucket(per_minute: int, now: float) -> TokenBucket:
    return TokenBucket(per_minute, float(per_minute), now)


class KeyRateLimiter:
    """Per key requests/min and tokens/min. Admitted requests carry no ``x-ratelimit-*``
    headers: they are sent with the 429 that tells a client to wait, where they matter,
    so a request under its limits pays for no header formatting (every header costs
    the server a validation pass too)."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._requests: dict[str, TokenBucket] = {}
        self._tokens: dict[str, TokenBucket] = {}

    def admit(self, principal: Principal) -> None:
        """Take one request from the key's allowance, or raise ``RateLimited`` (429)."""
        rpm, tpm = principal.rate_limit_rpm, principal.rate_limit_tpm
        if not rpm and not tpm:
            return
        now = self._clock()
        key_id = principal.key_id
        requests = _current(self._requests, key_id, rpm, now) if rpm else None
        if requests is not None and requests.level < 1.0:
            _reject("requests per minute limit reached", "requests", requests, 1.0)
        if tpm:
            tokens = _current(self._tokens, key_id, tpm, now)
            if tokens.level < 1.0:
                _reject("tokens per minute limit reached", "tokens", tokens, 1.0)
        if requests is not None:
            requests.level -= 1.0

    def record_tokens(self, key_id: str, tokens: int) -> None:
        bucket = self._tokens.get(key_id)
        if bucket is not None and tokens > 0:
            bucket.refill(self._clock())
            bucket.level -= tokens


def _current(buckets: dict[str, TokenBucket], key_id: str, limit: int, now: float) -> TokenBucket:
    bucket = buckets.get(key_id)
    if bucket is None or bucket.per_minute != limit:
        bucket = buckets[key_id] = _bucket(limit, now)
    else:
        bucket.refill(now)
    return bucket


def _reject(message: str, kind: str, bucket: TokenBucket, amount: float) -> NoReturn:
    wait = bucket.seconds_until(amount)
    raise RateLimited(
        message, retry_after_seconds=wait, headers=_as_str(_headers(kind, bucket, wait))
    )


_HEADER_NAMES = {
    kind: (
        f"x-ratelimit-limit-{kind}".encode(),
        f"x-ratelimit-remaining-{kind}".encode(),
        f"x-ratelimit-reset-{kind}".encode(),
    )
    for kind in ("requests", "tokens")
}


def _headers(kind: str, bucket: TokenBucket, reset_seconds: float) -> Headers:
    limit, remaining, reset = _HEADER_NAMES[kind]
    return [
        (limit, b"%d" % bucket.per_minute),
        (remaining, b"%d" % max(0, int(bucket.level))),
        (reset, b"%.3fs" % reset_seconds),
    ]


def _as_str(headers: Headers) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in headers}


class EndpointGate:
    """At most ``max_concurrency`` requests in flight; up to ``max_queue`` more wait in order."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def try_acquire(self, max_concurrency: int) -> bool:
        """Take a free slot at once if there is one (the common case needs no coroutine)."""
        if self.in_flight < max_concurrency and not self._waiters:
            self.in_flight += 1
            return True
        return False

    async def acquire(self, max_concurrency: int, max_queue: int, timeout_seconds: float) -> None:
        if self.try_acquire(max_concurrency):
            return
        if len(self._waiters) >= max_queue:
            raise RateLimited("endpoint is at capacity, retry later", retry_after_seconds=1.0)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout_seconds)
        except TimeoutError:
            if waiter.done():
                return  # the slot arrived just as the timer fired: keep it
            self._waiters.remove(waiter)
            waiter.cancel()
            raise Unavailable("endpoint queue timeout", retry_after_seconds=1.0) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot while being cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        # A finished request hands its slot straight to the oldest waiter.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1
