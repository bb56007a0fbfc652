"""Run the CLI with typer's CliRunner against a scripted API on ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

import regolo
from regolo.cli.main import app

BASE_URL = "http://regolo.test"


@dataclass
class ScriptedAPI:
    base_url: str = BASE_URL
    routes: dict[tuple[str, str], list[httpx.Response]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def json(self, method: str, path: str, *bodies: Any, status: int = 200) -> None:
        """Answer with each body in turn; the last one repeats."""
        self.routes[(method, path)] = [httpx.Response(status, json=body) for body in bodies]

    def raw(self, method: str, path: str, response: httpx.Response) -> None:
        self.routes[(method, path)] = [response]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get((request.method, request.url.raw_path.decode().split("?")[0]))
        if not answers:
            return httpx.Response(
                404,
                headers={"x-request-id": "req_404"},
                json={"error": {"message": "not found", "type": "not_found"}},
            )
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def last_json(self) -> Any:
        return json.loads(self.requests[-1].content)


@pytest.fixture
def api() -> ScriptedAPI:
    return ScriptedAPI()


@pytest.fixture
def run(api: ScriptedAPI) -> Callable[..., Result]:
    def invoke(*args: str, input: str | None = None) -> Result:
        client = regolo.RegoloClient(
            api_key="rk_admin",
            base_url=api.base_url,
            max_retries=0,
            transport=httpx.MockTransport(api.handle),
        )
        return CliRunner().invoke(
            app, list(args), obj=client, input=input, env={"COLUMNS": "200", "NO_COLOR": "1"}
        )

    return invoke


ENDPOINT = {
    "id": "ep_1",
    "name": "sentiment-api",
    "model": "sentiment-classifier",
    "version": "1.0",
    "status": "ready",
    "replicas": 2,
    "instance_type": "cpu-small",
    "url": f"{BASE_URL}/endpoints/sentiment-api",
    "deployments": [
        {
            "id": "dep_1",
            "version": "1.0",
            "traffic_weight": 0.9,
            "replicas": 2,
            "ready_replicas": 2,
            "status": "ready",
        },
        {
            "id": "dep_2",
            "version": "1.1",
            "traffic_weight": 0.1,
            "replicas": 1,
            "ready_replicas": 1,
            "status": "ready",
        },
    ],
}


@pytest.fixture
def endpoint() -> dict[str, Any]:
    return json.loads(json.dumps(ENDPOINT))
