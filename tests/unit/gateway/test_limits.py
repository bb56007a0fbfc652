import asyncio

import pytest

from regolo.server.errors import RateLimited, Unavailable
from regolo.server.gateway.limits import EndpointGate, KeyRateLimiter
from regolo.server.specs import Principal


def key(rpm: int | None = None, tpm: int | None = None) -> Principal:
    return Principal(
        account_id="a", key_id="k", scopes=frozenset(), rate_limit_rpm=rpm, rate_limit_tpm=tpm
    )


def test_requests_bucket_admits_exactly_the_limit_then_refills() -> None:
    now = [0.0]
    limiter = KeyRateLimiter(clock=lambda: now[0])
    for _ in range(5):
        limiter.admit(key(rpm=5))
    with pytest.raises(RateLimited) as info:
        limiter.admit(key(rpm=5))
    assert (
        info.value.headers["Retry-After"] == "12"
        and info.value.headers["x-ratelimit-remaining-requests"] == "0"
    )
    now[0] = 12.0
    limiter.admit(key(rpm=5))


def test_tokens_debited_after_the_fact() -> None:
    limiter = KeyRateLimiter(clock=lambda: 0.0)
    limiter.admit(key(tpm=100))
    limiter.record_tokens("k", 150)
    with pytest.raises(RateLimited):
        limiter.admit(key(tpm=100))


def test_no_limits_always_admits() -> None:
    limiter = KeyRateLimiter(clock=lambda: 0.0)
    for _ in range(1000):
        limiter.admit(key())


def test_tokens_limit_rejection_names_the_tokens_bucket_and_keeps_the_request() -> None:
    now = [0.0]
    limiter = KeyRateLimiter(clock=lambda: now[0])
    limiter.admit(key(rpm=2, tpm=100))
    limiter.record_tokens("k", 100)
    with pytest.raises(RateLimited) as info:
        limiter.admit(key(rpm=2, tpm=100))
    assert info.value.headers["x-ratelimit-limit-tokens"] == "100"
    now[0] = 0.6  # one token back; had the rejected request been counted, none would be left
    limiter.admit(key(rpm=2, tpm=100))
    with pytest.raises(RateLimited) as info:
        limiter.admit(key(rpm=2, tpm=100))
    assert info.value.headers["x-ratelimit-remaining-requests"] == "0"


def test_gate_queue_and_timeout() -> None:
    async def run() -> None:
        gate = EndpointGate()
        await gate.acquire(1, 1, 1.0)
        waiter = asyncio.ensure_future(gate.acquire(1, 1, 5.0))
        await asyncio.sleep(0)
        with pytest.raises(RateLimited):
            await gate.acquire(1, 1, 1.0)
        gate.release()
        await waiter
        assert gate.in_flight == 1
        with pytest.raises(Unavailable):
            await gate.acquire(1, 1, 0.05)
        gate.release()
        assert gate.in_flight == 0 and gate.queued == 0

    asyncio.run(run())


def test_sustained_rate_is_the_limit_after_the_first_minutes_burst() -> None:
    now = [0.0]
    limiter = KeyRateLimiter(clock=lambda: now[0])
    admitted = 0
    for step in range(1201):  # an attempt every half second for ten minutes
        now[0] = step * 0.5
        try:
            limiter.admit(key(rpm=60))
            admitted += 1
        except RateLimited:
            pass
    # a full minute's allowance at once, then one a second as it refills
    assert admitted == 60 + 600


def test_changed_limit_takes_effect_at_once() -> None:
    limiter = KeyRateLimiter(clock=lambda: 0.0)
    for _ in range(3):
        limiter.admit(key(rpm=3))
    with pytest.raises(RateLimited):
        limiter.admit(key(rpm=3))
    limiter.admit(key(rpm=10))  # raised by an admin: a new, full allowance
