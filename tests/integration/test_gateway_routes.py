"""Every gateway route with the real openai client (sync, async, streaming), curl and httpx."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import openai
import pytest

from regolo.server.gateway.app import Gateway, GatewayOptions, create_gateway
from regolo.server.gateway.request_body import BodyLimits
from regolo.server.gateway.routing_table import (
    RouteDeployment,
    RouteEndpoint,
    RouteReplica,
    RoutingTable,
)
from regolo.server.gateway.usage import UsageBuffer
from regolo.server.specs import Principal
from tests.support.fake_openai_server import FakeOpenAIServer, ServedApp

pytestmark = pytest.mark.timeout(60)

KEYS = {
    "sk-all": Principal(account_id="acme", key_id="k-all", scopes=frozenset({"inference:*"})),
    "sk-a": Principal(
        account_id="acme", key_id="k-a", scopes=frozenset({"inference:sentiment-api"})
    ),
    "sk-other": Principal(account_id="globex", key_id="k-o", scopes=frozenset({"inference:*"})),
}


class Keys:
    def authenticate_cached(self, bearer: str) -> tuple[bool, Principal | None]:
        return True, self.authenticate(bearer)

    def authenticate(self, bearer: str) -> Principal | None:
        return KEYS.get(bearer)


def endpoint(
    name: str, model: str, replica: FakeOpenAIServer, account: str = "acme"
) -> RouteEndpoint:
    deployment = RouteDeployment(
        deployment_id=f"{name}-d1",
        version="1.0",
        traffic_weight=1.0,
        served_model_name="served",
        replicas=(
            RouteReplica(replica_id=replica.replica_id, address=replica.address, auth_token="tok"),
        ),
    )
    return RouteEndpoint(
        endpoint_id=f"id-{name}",
        name=name,
        account_id=account,
        model_name=model,
        deployments=(deployment,),
        enable_cache=True,
        enable_compression=True,
    )


@pytest.fixture(scope="module")
def replica() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer("r1").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(replica: FakeOpenAIServer) -> Gateway:
    gw = create_gateway(
        authenticator=Keys(),
        endpoint_domain="regolo.test",
        usage=UsageBuffer(),
        limits=BodyLimits(max_body_bytes=64 * 1024, max_tokens_cap=1000, n_cap=4),
        options=GatewayOptions(compression_min_bytes=200),
    )
    gw.set_table(RoutingTable((
        endpoint("sentiment-api", "sentiment-classifier", replica),
        endpoint("chat-b", "llama", replica),
        endpoint("secret", "secret-model", replica, account="globex"),
    )))  # fmt: skip
    return gw


@pytest.fixture(scope="module")
def url(gateway: Gateway) -> Iterator[str]:
    with ServedApp(gateway) as served:
        yield served.url


MESSAGES = [{"role": "user", "content": "Hello!"}]
BASES = ["/v1", "/endpoints/sentiment-api/v1"]


@pytest.mark.parametrize("base", BASES)
def test_openai_sync_client_on_every_operation(url: str, base: str) -> None:
    client = openai.OpenAI(api_key="sk-all", base_url=url + base, max_retries=0)
    chat = client.chat.completions.create(model="sentiment-api", messages=MESSAGES)  # type: ignore[arg-type]
    assert chat.choices[0].message.content == "hello from r1"
    completion = client.completions.create(model="sentiment-classifier", prompt="hi")
    assert completion.choices[0].text == "hello from r1"
    embedding = client.embeddings.create(model="sentiment-api", input="hi")
    assert embedding.data[0].embedding == [0.1, 0.2, 0.3]
    ids = {m.id for m in client.models.list()}
    assert "sentiment-api" in ids and "secret" not in ids


def test_openai_async_and_streaming(url: str) -> None:
    async def run() -> list[str]:
        client = openai.AsyncOpenAI(api_key="sk-all", base_url=url + "/v1", max_retries=0)
        stream = await client.chat.completions.create(
            model="sentiment-api",
            messages=MESSAGES,
            stream=True,  # type: ignore[arg-type]
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream]
        await client.close()
        return pieces

    assert "".join(asyncio.run(run())) == "tok0 tok1 tok2 tok3 tok4 "


def test_sync_streaming_on_endpoint_url(url: str) -> None:
    client = openai.OpenAI(api_key="sk-all", base_url=url + "/endpoints/chat-b/v1", max_retries=0)
    stream = client.chat.completions.create(model="ignored", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "tok0 tok1 tok2 tok3 tok4 "


def test_model_field_optional_on_endpoint_url(url: str, replica: FakeOpenAIServer) -> None:
    response = httpx.post(
        url + "/endpoints/sentiment-api/v1/chat/completions",
        headers={"Authorization": "Bearer sk-all"},
        json={"messages": MESSAGES},
    )
    assert response.status_code == 200
    assert json.loads(replica.counters.bodies[-1])["model"] == "served"  # rewritten for the replica
    assert replica.counters.authorizations[-1] == b"Bearer tok"


def test_host_form(url: str) -> None:
    client = openai.OpenAI(
        api_key="sk-all",
        base_url=url + "/v1",
        max_retries=0,
        default_headers={"Host": "sentiment-api.regolo.test"},
    )
    chat = client.chat.completions.create(model="whatever", messages=MESSAGES)  # type: ignore[arg-type]
    assert chat.choices[0].message.content == "hello from r1"
    assert [m.id for m in client.models.list()] == ["sentiment-api", "sentiment-classifier"]


SEED_BODY = """{
    "model": "sentiment-api",
    "messages": [{"role": "user", "content": "Hello!"}]
  }"""


@pytest.mark.parametrize("slash", ["/", ""])
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_exactly_as_in_the_seed(url: str, slash: str) -> None:
    out = subprocess.run(
        ["curl", "-s", f"{url}/custom-model/v1/chat/completions{slash}",
         "-H", "Authorization: Bearer sk-all", "-H", "Content-Type: application/json",
         "-d", SEED_BODY],
        capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["choices"][0]["message"]["content"] == "hello from r1"


def test_every_response_has_a_request_id_and_errors_are_openai_shaped(url: str) -> None:
    response = httpx.post(url + "/v1/chat/completions", json={"model": "x"})
    assert response.status_code == 401
    assert response.headers["x-request-id"]
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("key", "model", "status"),
    [("sk-a", "sentiment-api", 200), ("sk-a", "chat-b", 404), ("sk-a", "llama", 404),
     ("sk-other", "sentiment-api", 404), ("sk-all", "secret", 404), ("sk-all", "nope", 404)],
)  # fmt: skip
def test_scope_matrix_s5(url: str, key: str, model: str, status: int) -> None:
    response = httpx.post(
        url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": MESSAGES},
    )  # fmt: skip
    assert response.status_code == status
    if status == 404:
        assert response.json()["error"]["code"] == "model_not_found"


def test_models_list_only_callable_s5(url: str) -> None:
    listed = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer sk-a"}).json()
    assert listed["object"] == "list"
    assert {m["id"] for m in listed["data"]} == {"sentiment-api", "sentiment-classifier"}
    assert {m["owned_by"] for m in listed["data"]} == {"regolo"}
    hidden = httpx.get(
        url + "/endpoints/chat-b/v1/models", headers={"Authorization": "Bearer sk-a"}
    )
    assert hidden.status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type", "status", "param"),
    [
        (b"x" * (64 * 1024 + 1), "application/json", 413, None),
        (
            json.dumps({"model": "sentiment-api", "max_tokens": 1001}).encode(),
            "application/json",
            400,
            "max_tokens",
        ),
        (json.dumps({"model": "sentiment-api", "n": 5}).encode(), "application/json", 400, "n"),
        (b"model=x", "application/x-www-form-urlencoded", 415, None),
        (b"{not json", "application/json", 400, None),
        (b"[1, 2]", "application/json", 400, None),
    ],
)
def test_request_caps_s12(
    url: str, body: bytes, content_type: str, status: int, param: str | None
) -> None:
    response = httpx.post(
        url + "/v1/chat/completions", content=body,
        headers={"Authorization": "Bearer sk-all", "Content-Type": content_type},
    )  # fmt: skip
    assert response.status_code == status
    assert response.json()["error"]["param"] == param
    assert "Traceback" not in response.text


def test_caps_at_the_boundary_pass_s12(url: str) -> None:
    body = {"model": "sentiment-api", "messages": MESSAGES, "max_tokens": 1000, "n": 4}
    response = httpx.post(
        url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer sk-all"}
    )
    assert response.status_code == 200


def test_cache_hit_and_miss_never_shared_across_accounts(
    url: str, replica: FakeOpenAIServer
) -> None:
    body = {
        "model": "sentiment-api",
        "messages": [{"role": "user", "content": "cache me"}],
        "temperature": 0,
    }
    auth = {"Authorization": "Bearer sk-all"}
    first = httpx.post(url + "/v1/chat/completions", json=body, headers=auth)
    before = replica.counters.requests
    second = httpx.post(url + "/v1/chat/completions", json=body, headers=auth)
    assert (first.headers["x-regolo-cache"], second.headers["x-regolo-cache"]) == ("miss", "hit")
    assert replica.counters.requests == before and second.json() == first.json()
    streamed = httpx.post(
        url + "/v1/chat/completions", json={**body, "temperature": 0.7}, headers=auth
    )
    assert "x-regolo-cache" not in streamed.headers


def test_gzip_when_accepted_and_large(url: str) -> None:
    body = {"model": "sentiment-api", "messages": MESSAGES}
    auth = {"Authorization": "Bearer sk-all"}
    plain = httpx.post(
        url + "/v1/chat/completions", json=body, headers={**auth, "Accept-Encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers and len(plain.content) >= 200
    packed = httpx.post(
        url + "/v1/chat/completions", json=body, headers={**auth, "Accept-Encoding": "gzip"}
    )
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.json() == plain.json()


def test_wrong_method_after_auth(url: str) -> None:
    assert httpx.get(url + "/v1/chat/completions").status_code == 401
    response = httpx.get(url + "/v1/chat/completions", headers={"Authorization": "Bearer sk-all"})
    assert response.status_code == 405
