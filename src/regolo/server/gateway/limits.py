"""Admission limits: per key requests/min and tokens/min, per endpoint concurrency and queue.

Rates are token buckets holding a minute's allowance, so a burst admits exactly the
limit (S13). Tokens are only known once a response is back, so the tokens bucket is
debited afterwards and only admits while it holds at least one: a key overshoots its
budget by at most the requests already in flight.

A bucket is kept as the one time at which it will be full again (the generic cell
rate algorithm): taking ``n`` moves that time ``n`` shares of a minute later, and the
bucket holds at least one while it lies no more than a minute less one share ahead.
That is one comparison and one addition per request, with no refill step.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import NoReturn

from regolo.server.errors import RateLimited, Unavailable
from regolo.server.specs import Principal

Clock = Callable[[], float]
Headers = list[tuple[bytes, bytes]]
_MINUTE = 60.0
_SLACK = 1e-9  # float error in sums of shares; far below any share of a minute


class KeyAllowance:
    """One key's two buckets. A missing limit is a bucket that never runs out: a share
    of zero seconds and no bound on how far ahead it may be full."""

    __slots__ = (
        "request_share",
        "requests_ahead_max",
        "requests_full_at",
        "rpm",
        "token_share",
        "tokens_ahead_max",
        "tokens_full_at",
        "tpm",
    )

    def __init__(self, rpm: int | None, tpm: int | None, now: float) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.request_share = _MINUTE / rpm if rpm else 0.0  # seconds of refill per request
        self.token_share = _MINUTE / tpm if tpm else 0.0
        self.requests_ahead_max = _MINUTE - self.request_share + _SLACK if rpm else math.inf
        self.tokens_ahead_max = _MINUTE - self.token_share + _SLACK if tpm else math.inf
        self.requests_full_at = self.tokens_full_at = now


class KeyRateLimiter:
    """Per key requests/min and tokens/min. Admitted requests carry no ``x-ratelimit-*``
    headers: they are sent with the 429 that tells a client to wait, where they matter,
    so a request under its limits pays for no header formatting (every header costs
    the server a validation pass too)."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._keys: dict[str, KeyAllowance] = {}

    def admit(self, principal: Principal) -> None:
        """Take one request from the key's allowance, or raise ``RateLimited`` (429)."""
        rpm, tpm = principal.rate_limit_rpm, principal.rate_limit_tpm
        if not rpm and not tpm:
            return
        now = self._clock()
        key = self._keys.get(principal.key_id)
        if key is None or key.rpm != rpm or key.tpm != tpm:  # new key, or its limits changed
            key = self._keys[principal.key_id] = KeyAllowance(rpm, tpm, now)
        elif key.requests_full_at - now > key.requests_ahead_max:
            _reject("requests per minute limit reached", "requests", key, now)
        elif key.tokens_full_at - now > key.tokens_ahead_max:
            _reject("tokens per minute limit reached", "tokens", key, now)
        full_at = key.requests_full_at
        key.requests_full_at = (full_at if full_at > now else now) + key.request_share

    def record_tokens(self, key_id: str, tokens: int) -> None:
        key = self._keys.get(key_id)
        if key is not None and tokens > 0:
            now = self._clock()
            full_at = key.tokens_full_at
            key.tokens_full_at = (full_at if full_at > now else now) + tokens * key.token_share


def _reject(message: str, kind: str, key: KeyAllowance, now: float) -> NoReturn:
    if kind == "requests":
        limit, full_at, share = key.rpm or 0, key.requests_full_at, key.request_share
    else:
        limit, full_at, share = key.tpm or 0, key.tokens_full_at, key.token_share
    ahead = full_at - now
    wait = max(0.0, ahead - (_MINUTE - share))  # until it holds one again
    level = limit - ahead / share  # what the bucket holds now (below one)
    headers = _headers(kind, limit, level, wait)
    raise RateLimited(message, retry_after_seconds=wait, headers=_as_str(headers))


_HEADER_NAMES = {
    kind: (
        f"x-ratelimit-limit-{kind}".encode(),
        f"x-ratelimit-remaining-{kind}".encode(),
        f"x-ratelimit-reset-{kind}".encode(),
    )
    for kind in ("requests", "tokens")
}


def _headers(kind: str, limit: int, level: float, reset_seconds: float) -> Headers:
    names = _HEADER_NAMES[kind]
    return [
        (names[0], b"%d" % limit),
        (names[1], b"%d" % max(0, int(level))),
        (names[2], b"%.3fs" % reset_seconds),
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
