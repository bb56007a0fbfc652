"""A scripted server on ``httpx.MockTransport``: routes answer canned JSON and record requests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import regolo

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]
BASE_URL = "http://regolo.test"


@dataclass
class FakeAPI:
    base_url: str = BASE_URL
    routes: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        """Answer in order; the last answer repeats."""
        self.routes[(method, path)] = list(answers)

    def json(self, method: str, path: str, body: Any, status: int = 200) -> None:
        self.on(method, path, httpx.Response(status, json=body))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get((request.method, request.url.raw_path.decode().split("?")[0]))
        if not answers:
            return httpx.Response(404, json={"error": {"message": "no route", "type": "nf"}})
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(request) if callable(answer) else answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)

    def client(self, **kwargs: Any) -> regolo.RegoloClient:
        kwargs.setdefault("api_key", "rk_test")
        kwargs.setdefault("base_url", BASE_URL)
        client = regolo.RegoloClient(transport=httpx.MockTransport(self.handle), **kwargs)
        client._http.sleep = lambda seconds: None  # retries must not slow the tests
        return client


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


@pytest.fixture
def default_client(api: FakeAPI) -> Iterator[regolo.RegoloClient]:
    """Point the module-level functions at the fake API, and restore afterwards."""
    client = regolo.configure(
        api_key="rk_admin", base_url=BASE_URL, transport=httpx.MockTransport(api.handle)
    )
    yield client
    regolo._default_client._client = None
    client.close()


@pytest.fixture
def endpoint_json() -> Callable[..., dict[str, Any]]:
    return make_endpoint_json


def make_endpoint_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "ep_1",
        "name": "sentiment-api",
        "model": "sentiment-classifier",
        "version": "1.0",
        "status": "pending",
        "replicas": 2,
        "url": f"{BASE_URL}/endpoints/sentiment-api",
        "deployments": [
            {
                "id": "dep_1",
                "version": "1.0",
                "traffic_weight": 1.0,
                "replicas": 2,
                "ready_replicas": 0,
                "status": "starting",
            }
        ],
        "created_at": "2025-01-01T00:00:00Z",
    }
    body.update(overrides)
    return body
