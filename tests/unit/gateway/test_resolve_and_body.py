import asyncio

import pytest

from regolo.server.errors import InvalidRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from regolo.server.gateway.auth import bearer_token
from regolo.server.gateway.proxy import Outcome, count_tokens
from regolo.server.gateway.request_body import BodyLimits, check_caps, check_content_type, read_body
from regolo.server.gateway.resolve import Route, host_endpoint_name, match_route, resolve_endpoint
from regolo.server.gateway.routing_table import RouteEndpoint, RoutingTable
from regolo.server.gateway.usage import UsageBuffer
from regolo.server.specs import Principal, UsageRecord


@pytest.mark.parametrize(
    ("path", "host", "route"),
    [
        ("/v1/chat/completions", None, Route("chat/completions", None)),
        ("/custom-model/v1/chat/completions/", None, Route("chat/completions", None)),
        ("/endpoints/sa/v1/embeddings", None, Route("embeddings", "sa")),
        ("/v1/models", "sa", Route("models", "sa")),
        ("/v1/endpoints", None, None),
        ("/endpoints//v1/models", None, None),
        ("/endpoints/sa/custom-model/v1/chat/completions", None, None),
    ],
)
def test_routes(path: str, host: str | None, route: Route | None) -> None:
    assert match_route(path, host) == route


def test_host_names() -> None:
    reserved = frozenset({"api"})
    assert host_endpoint_name(b"sentiment-api.regolo.ai", "regolo.ai", reserved) == "sentiment-api"
    assert (
        host_endpoint_name(b"sentiment-api.regolo.ai:8443", "regolo.ai", reserved)
        == "sentiment-api"
    )
    assert host_endpoint_name(b"api.regolo.ai", "regolo.ai", reserved) is None
    assert host_endpoint_name(b"a.b.regolo.ai", "regolo.ai", reserved) is None
    assert host_endpoint_name(b"sentiment-api.regolo.ai", None, reserved) is None


def test_resolution_hides_what_a_key_cannot_call() -> None:
    only_k9 = frozenset({"k9"})
    table = RoutingTable(
        (
            RouteEndpoint(endpoint_id="1", name="a", account_id="acc", model_name="ma"),
            RouteEndpoint(
                endpoint_id="2",
                name="b",
                account_id="acc",
                model_name="mb",
                allowed_key_ids=only_k9,
            ),
        )
    )
    key = Principal(account_id="acc", key_id="k1", scopes=frozenset({"inference:*"}))
    assert resolve_endpoint(table, key, Route("chat/completions", None), "ma").endpoint_id == "1"
    with pytest.raises(NotFound):
        resolve_endpoint(table, key, Route("chat/completions", None), "b")
    with pytest.raises(InvalidRequest):
        resolve_endpoint(table, key, Route("chat/completions", None), None)


def test_bearer_parsing() -> None:
    assert bearer_token(b"Bearer sk-1") == "sk-1"
    assert bearer_token(b"bearer  sk-1 ") == "sk-1"
    assert bearer_token(b"Basic abc") is None
    assert bearer_token(b"Bearer ") is None
    assert bearer_token(b"Bearer " + b"x" * 10_000_000) is None


def test_caps_and_types() -> None:
    limits = BodyLimits(max_tokens_cap=10, n_cap=2)
    check_caps({"max_tokens": 10, "n": 2}, limits)
    for bad, param in (
        ({"max_tokens": 11}, "max_tokens"),
        ({"n": 3}, "n"),
        ({"n": True}, "n"),
        ({"stream": "yes"}, "stream"),
    ):
        with pytest.raises(InvalidRequest) as info:
            check_caps(bad, limits)
        assert info.value.param == param
    with pytest.raises(UnsupportedMediaType):
        check_content_type(b"text/plain")
    check_content_type(b"application/json; charset=utf-8")


def test_body_cap_while_streaming_in() -> None:
    messages = [{"type": "http.request", "body": b"x" * 600, "more_body": True}] * 2

    async def receive() -> dict[str, object]:
        return messages.pop()

    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_body(receive, None, 1000))
    # A declared size past the cap is refused once more is due, before reading on.
    messages = [{"type": "http.request", "body": b"x" * 600, "more_body": True}]
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_body(receive, b"1001", 1000))
    assert messages == []


def test_body_cap_on_a_body_that_came_in_one_read() -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"x" * 1001, "more_body": False}

    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_body(receive, b"1001", 1000))


def test_usage_buffer_bounded_and_counts_drops() -> None:
    import time

    buffer = UsageBuffer(capacity=2)
    record = UsageRecord(
        at=time.time(), account_id="a", key_id="k", endpoint_id="e",
        deployment_id=None, version=None, replica_id=None, status_code=200, latency_ms=1.0,
    )  # fmt: skip
    for _ in range(3):
        buffer.record(record)
    assert buffer.dropped == 1 and len(buffer.drain(1)) == 1 and len(buffer.drain()) == 1


@pytest.mark.parametrize(
    "answer",
    [
        b'{"id":"x","usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}',
        b'{"id":"x","usage":{"completion_tokens":3,"prompt_tokens":9,"total_tokens":12}}',
        b'{"id":"x","usage": {\n  "prompt_tokens": 9,\n  "completion_tokens": 3\n}}',
        b'{"id":"x","usage":{"prompt_tokens":9,"total_tokens":12,"completion_tokens":3}}',
        b'{"usage":"a string","prompt_tokens":9,"completion_tokens":3}',
    ],
    ids=["openai-order", "llamacpp-order", "spaced", "apart", "usage-not-an-object"],
)
def test_token_counts_in_every_shape_servers_send(answer: bytes) -> None:
    outcome = Outcome()
    count_tokens(answer, outcome)
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (9, 3)


def test_token_counts_of_an_answer_without_usage_stay_zero() -> None:
    outcome = Outcome()
    count_tokens(b'{"id":"x","choices":[]}', outcome)
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (0, 0)
