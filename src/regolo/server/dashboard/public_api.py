"""The dashboard's only way to read or change anything: the public REST API, in-process.

Requests go through the platform's top-level ASGI app with the session's key as a bearer
token, exactly as an external client's would (same auth, scopes, validation, errors), but
without a network hop and without the key ever reaching the browser's JavaScript.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

BASE_URL = "http://dashboard.internal"


@dataclass
class ApiResult:
    status_code: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def error_message(self) -> str:
        try:
            return str(self.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            return f"the API answered {self.status_code}"


class PublicApi:
    def __init__(self, app: Any) -> None:
        self._app = app

    async def request(
        self,
        method: str,
        path: str,
        api_key: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> ApiResult:
        transport = httpx.ASGITransport(app=self._app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60) as client:
            response = await client.request(
                method,
                path,
                headers={"Authorization": f"Bearer {api_key}"},
                json=json_body,
                params=params,
                files=files,
                data=data,
            )
        return ApiResult(response.status_code, response.content, dict(response.headers))

    async def get(self, path: str, api_key: str, **params: Any) -> ApiResult:
        return await self.request("GET", path, api_key, params=params or None)

    async def stream(
        self, method: str, path: str, api_key: str, json_body: Any
    ) -> tuple[int, AsyncIterator[bytes]]:
        """Call the app and hand back its body chunk by chunk as it is sent.

        httpx's ASGI transport buffers whole bodies, which would defeat streaming chat,
        so this is a minimal ASGI bridge: the app runs as a task and its body messages
        flow through a queue.
        """
        payload = json.dumps(json_body).encode()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        disconnected = asyncio.Event()
        task = asyncio.create_task(
            self._run(_scope(method, path, api_key, payload), payload, queue, disconnected)
        )
        first = await queue.get()
        status = int(first["status"]) if first and first["type"] == "http.response.start" else 502
        return status, _body_chunks(queue, task, disconnected)

    async def _run(
        self,
        scope: dict[str, Any],
        payload: bytes,
        queue: asyncio.Queue[dict[str, Any] | None],
        disconnected: asyncio.Event,
    ) -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            await queue.put(message)

        try:
            await self._app(scope, receive, send)
        finally:
            await queue.put(None)


def _scope(method: str, path: str, api_key: str, payload: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"dashboard.internal"),
            (b"authorization", f"Bearer {api_key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 0),
        "server": ("dashboard.internal", 80),
    }


async def _body_chunks(
    queue: asyncio.Queue[dict[str, Any] | None],
    task: asyncio.Task[None],
    disconnected: asyncio.Event,
) -> AsyncIterator[bytes]:
    try:
        while (message := await queue.get()) is not None:
            if message["type"] == "http.response.body":
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body", False):
                    break
    finally:
        # The browser went away or the body ended: let the upstream call see a disconnect.
        disconnected.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=5)
