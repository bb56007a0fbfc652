import json
from typing import Any

import httpx
import pytest

import regolo
from regolo._http import DEFAULT_MAX_RETRIES

FakeAPI = Any  # the ``api`` fixture of conftest.py

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "sentiment-classifier",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "positive"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    "system_fingerprint": "fp",
}
MESSAGES = [{"role": "user", "content": "This is great!"}]


def sse(*events: str) -> httpx.Response:
    body = "".join(f"data: {event}\n\n" for event in events)
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def delta(text: str) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})


def test_chat_to_the_server_base(api: FakeAPI) -> None:
    api.json("POST", "/v1/chat/completions", COMPLETION)
    response = api.client().static_chat_completions(
        model="your-custom-model-name", messages=MESSAGES, temperature=0
    )
    assert response.choices[0].message.content == "positive"
    assert response.usage is not None and response.usage.total_tokens == 4
    assert response.system_fingerprint == "fp"  # extra fields survive
    assert api.last.headers["authorization"] == "Bearer rk_test"
    assert api.last_json() == {
        "model": "your-custom-model-name",
        "messages": MESSAGES,
        "temperature": 0,
    }
    assert "idempotency-key" not in api.last.headers


@pytest.mark.parametrize(
    "endpoint_url",
    ["http://regolo.test/endpoints/sentiment-api", "http://regolo.test/endpoints/sentiment-api/v1"],
)
def test_chat_to_an_endpoint_needs_no_model(api: FakeAPI, endpoint_url: str) -> None:
    api.json("POST", "/endpoints/sentiment-api/v1/chat/completions", COMPLETION)
    client = regolo.RegoloClient(
        api_key="rk_test", endpoint_url=endpoint_url, transport=httpx.MockTransport(api.handle)
    )
    response = client.static_chat_completions(messages=MESSAGES)
    assert response.choices[0].message.content == "positive"
    assert api.last_json() == {"messages": MESSAGES}


def test_alternative_url_is_the_base(api: FakeAPI) -> None:
    api.json("POST", "/v1/chat/completions", COMPLETION)
    client = regolo.RegoloClient(
        api_key="k", alternative_url=api.base_url, transport=httpx.MockTransport(api.handle)
    )
    assert client.base_url == api.base_url
    client.static_chat_completions(MESSAGES, model="m")
    assert str(api.last.url) == f"{api.base_url}/v1/chat/completions"


def test_key_and_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGOLO_API_KEY", "rk_env")
    monkeypatch.setenv("REGOLO_BASE_URL", "http://env.test:9000")
    client = regolo.RegoloClient()
    assert (client.api_key, client.base_url) == ("rk_env", "http://env.test:9000")


def test_for_endpoint_keeps_key_and_transport(api: FakeAPI) -> None:
    api.json("POST", "/endpoints/a%20b/v1/chat/completions", COMPLETION)
    api.client().for_endpoint("a b").static_chat_completions(MESSAGES)
    assert api.last.headers["authorization"] == "Bearer rk_test"


def test_chat_stream_yields_deltas(api: FakeAPI) -> None:
    role_only = json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    api.on("POST", "/v1/chat/completions", sse(role_only, delta("Hel"), delta("lo"), "[DONE]"))
    assert list(api.client().chat_stream(MESSAGES, model="m")) == ["Hel", "lo"]
    assert api.last_json()["stream"] is True


def test_stream_cut_before_done_raises(api: FakeAPI) -> None:
    api.on("POST", "/v1/chat/completions", sse(delta("Hel")))
    stream = api.client().chat_stream(MESSAGES, model="m")
    assert next(stream) == "Hel"
    with pytest.raises(regolo.APIConnectionError):
        next(stream)


def test_error_event_in_stream_raises(api: FakeAPI) -> None:
    error = json.dumps({"error": {"message": "replica died", "type": "upstream_error"}})
    api.on("POST", "/v1/chat/completions", sse(delta("a"), error))
    with pytest.raises(regolo.ServerError, match="replica died"):
        list(api.client().chat_stream(MESSAGES, model="m"))


def test_stream_http_error_is_typed(api: FakeAPI) -> None:
    body = {"error": {"message": "bad key", "type": "authentication_error"}}
    api.json("POST", "/v1/chat/completions", body, status=401)
    with pytest.raises(regolo.AuthenticationError, match="bad key"):
        list(api.client().chat_stream(MESSAGES, model="m"))


def test_completions_and_embeddings(api: FakeAPI) -> None:
    api.json("POST", "/v1/completions", {"choices": [{"index": 0, "text": " a time"}]})
    api.json(
        "POST", "/v1/embeddings", {"data": [{"index": 0, "embedding": [0.5, 1.0]}], "model": "e"}
    )
    client = api.client()
    assert client.completions("Once upon", model="m", max_tokens=2).choices[0].text == " a time"
    assert api.last_json() == {"model": "m", "prompt": "Once upon", "max_tokens": 2}
    assert client.embeddings(["x"], model="e").data[0].embedding == [0.5, 1.0]


def test_rate_limit_is_retried_after_the_server_says(api: FakeAPI) -> None:
    limited = httpx.Response(
        429,
        headers={"retry-after": "2"},
        json={"error": {"message": "slow", "type": "rate_limit_error"}},
    )
    api.on("POST", "/v1/chat/completions", limited, httpx.Response(200, json=COMPLETION))
    client = api.client()
    waits: list[float] = []
    client._http.sleep = waits.append
    assert client.static_chat_completions(MESSAGES, model="m").choices[0].message.content
    assert waits == [2.0]


def test_retries_run_out_into_a_typed_error(api: FakeAPI) -> None:
    unavailable = httpx.Response(
        503, json={"error": {"message": "no replica", "type": "service_unavailable"}}
    )
    api.on("POST", "/v1/chat/completions", unavailable)
    with pytest.raises(regolo.ServerError, match="no replica") as caught:
        api.client().static_chat_completions(MESSAGES, model="m")
    assert caught.value.status_code == 503
    assert len(api.requests) == DEFAULT_MAX_RETRIES + 1


def test_no_retry_when_disabled(api: FakeAPI) -> None:
    api.json("POST", "/v1/chat/completions", {"error": {"message": "x"}}, status=429)
    with pytest.raises(regolo.RateLimitError):
        api.client(max_retries=0).static_chat_completions(MESSAGES, model="m")
    assert len(api.requests) == 1


def test_connection_refused_is_retried_then_reported(api: FakeAPI) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    api.on("GET", "/v1/endpoints", refuse)
    with pytest.raises(regolo.APIConnectionError, match=r"regolo\.test"):
        api.client().list_endpoints()
    assert len(api.requests) == DEFAULT_MAX_RETRIES + 1


def test_inference_post_is_not_resent_after_it_was_sent(api: FakeAPI) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    api.on("POST", "/v1/chat/completions", drop)
    with pytest.raises(regolo.APIConnectionError):
        api.client().static_chat_completions(MESSAGES, model="m")
    assert len(api.requests) == 1


def test_control_write_is_resent_with_the_same_idempotency_key(
    api: FakeAPI, endpoint_json: Any
) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    api.on("POST", "/v1/endpoints", drop, httpx.Response(201, json=endpoint_json()))
    api.client().create_endpoint("sentiment-api", "sentiment-classifier")
    keys = {request.headers["idempotency-key"] for request in api.requests}
    assert len(api.requests) == 2 and len(keys) == 1


def test_timeout_is_reported_as_timeout(api: FakeAPI) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    api.on("POST", "/v1/chat/completions", slow)
    with pytest.raises(regolo.APITimeoutError):
        api.client().static_chat_completions(MESSAGES, model="m")


def test_context_manager_closes(api: FakeAPI) -> None:
    with api.client() as client:
        assert client.base_url == api.base_url
    assert client._http._client.is_closed
