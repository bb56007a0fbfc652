"""Pure pieces of the dashboard: form parsing, snippets, formatting, session sealing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from regolo.server.dashboard.formatting import download_percent, human_bytes, human_count, money
from regolo.server.dashboard.pages.forms import FormError, endpoint_body, scaling_body, traffic_body
from regolo.server.dashboard.pages.keys import scopes_of
from regolo.server.dashboard.pages.playground import chat_body
from regolo.server.dashboard.session import (
    SessionCodec,
    key_prefix,
    load_or_create_secret,
    new_session,
    tokens_match,
)
from regolo.server.dashboard.snippets import curl_snippet, python_snippet

KEY = "rg_0123456789abcdef_" + "S" * 32


def test_endpoint_body_keeps_only_given_fields() -> None:
    form = {"name": "api", "replicas": "2", "max_replicas": "", "request_timeout_seconds": "30"}
    body = endpoint_body(form, model="m", version="1.0")
    assert body == {
        "name": "api",
        "model": "m",
        "version": "1.0",
        "replicas": 2,
        "request_timeout_seconds": 30.0,
        "enable_cache": False,
        "enable_compression": False,
    }
    with pytest.raises(FormError, match="replicas"):
        endpoint_body({"replicas": "two"}, model="m", version="1.0")


def test_traffic_body_turns_percentages_into_fractions() -> None:
    body = traffic_body({"csrf_token": "t", "weight__1.0": "70", "weight__1.1": "30"})
    assert body == {"version_traffic": {"1.0": 0.7, "1.1": 0.3}}
    with pytest.raises(FormError):
        traffic_body({"csrf_token": "t"})
    assert scaling_body({"replicas": "3", "min_replicas": ""}) == {"replicas": 3}


def test_key_scopes_from_the_form() -> None:
    assert scopes_of({}) == ["inference:*"]
    assert scopes_of({"scope": "admin"}) == ["admin"]
    assert scopes_of({"scope": "endpoint", "endpoint": "demo"}) == ["inference:demo"]


def test_chat_body_is_bounded_and_always_streams() -> None:
    ok = chat_body({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}, "demo")
    assert ok == {
        "model": "demo",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "stream": True,
    }
    assert chat_body({"messages": [{"role": "tool", "content": "x"}]}, "demo") is None
    assert (
        chat_body({"messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6}, "demo")
        is None
    )
    assert chat_body({"messages": []}, "demo") is None
    assert chat_body("nope", "demo") is None


def test_snippets_show_the_prefix_never_the_secret() -> None:
    prefix = key_prefix(KEY)
    assert prefix == "rg_0123456789abcdef"
    url = "http://127.0.0.1:8000/endpoints/api/v1"
    for snippet in (
        curl_snippet(endpoint_url=url, model="api", key_prefix=prefix),
        python_snippet(endpoint_url=url, model="api", key_prefix=prefix),
    ):
        assert prefix in snippet and "S" * 8 not in snippet
    assert f"curl {url}/chat/completions" in curl_snippet(
        endpoint_url=url, model="api", key_prefix=prefix
    )


def test_formatting() -> None:
    assert human_bytes(98_362_432) == "98.4 MB"
    assert human_count(134_515_008) == "134.5M"
    assert money("0.0200", "USD") == "0.0200 USD" and money("1440", "USD") == "1,440.00 USD"
    assert download_percent({"bytes_done": 50, "bytes_total": 200}) == 25
    assert download_percent(None) == 0


def test_session_sealing_round_trip_and_tamper(tmp_path: Path) -> None:
    secret = load_or_create_secret(tmp_path)
    assert load_or_create_secret(tmp_path) == secret
    assert stat.S_IMODE((tmp_path / "dashboard-secret").stat().st_mode) == 0o600
    codec = SessionCodec(secret)
    session = new_session(KEY, account_name="default")
    sealed = codec.seal(session)
    assert KEY not in sealed and "S" * 8 not in sealed
    assert codec.open(sealed) == session
    assert codec.open(sealed[:-2] + "AA") is None
    assert codec.open(None) is None and codec.open("x" * 5000) is None
    other = SessionCodec(load_or_create_secret(tmp_path / "other"))
    assert other.open(sealed) is None
    assert tokens_match(session.csrf_token, session.csrf_token)
    assert not tokens_match(session.csrf_token, None) and not tokens_match(session.csrf_token, "")
