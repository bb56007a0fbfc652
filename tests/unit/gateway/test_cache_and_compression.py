import gzip

from regolo.server.gateway.cache import ResponseCache, cache_key, is_deterministic
from regolo.server.gateway.compression import choose_encoding, compress


def test_deterministic_requests() -> None:
    assert is_deterministic({"temperature": 0})
    assert is_deterministic({"seed": 3, "temperature": 1})
    assert not is_deterministic({"temperature": 0, "stream": True})
    assert not is_deterministic({"temperature": 0.5})


def test_key_is_normalised_and_per_account() -> None:
    assert cache_key("a", "e", "d", {"x": 1, "y": 2}) == cache_key("a", "e", "d", {"y": 2, "x": 1})
    assert cache_key("a", "e", "d", {"x": 1}) != cache_key("b", "e", "d", {"x": 1})


def test_ttl_and_byte_bound() -> None:
    now = [0.0]
    cache = ResponseCache(max_bytes=8_000, ttl_seconds=10, clock=lambda: now[0])
    cache.put(("a", "e", "d", "1"), b"x" * 500, b"application/json")
    assert cache.get(("a", "e", "d", "1")) is not None
    now[0] = 11
    assert cache.get(("a", "e", "d", "1")) is None
    for i in range(100):
        cache.put(("a", "e", "d", str(i)), b"x" * 500, b"application/json")
    assert cache.size_bytes <= 8_000 and cache.get(("a", "e", "d", "99")) is not None


def test_encoding_choice_and_gzip() -> None:
    assert choose_encoding(b"gzip, deflate") in (b"gzip", b"br")
    assert choose_encoding(b"gzip;q=0") is None
    assert choose_encoding(None) is None
    assert gzip.decompress(compress(b"a" * 2000, b"gzip")) == b"a" * 2000
