"""Writing whole responses to an ASGI ``send``: JSON bodies and OpenAI-shaped errors."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from regolo.server.errors import RegoloError

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_TYPE = (b"content-type", b"application/json")


def body_messages(status: int, headers: Headers, body: bytes) -> tuple[Message, Message]:
    """The ``http.response.start`` and body messages of a whole answer (adds its length)."""
    headers.append((b"content-length", b"%d" % len(body)))
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body, "more_body": False},
    )


async def send_body(send: Send, status: int, headers: Headers, body: bytes) -> None:
    start, answer = body_messages(status, headers, body)
    await send(start)
    await send(answer)


async def send_json(send: Send, status: int, payload: Any, headers: Headers) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send_body(send, status, [JSON_TYPE, *headers], body)


async def send_error(send: Send, error: RegoloError, headers: Headers) -> None:
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send_json(send, error.status_code, error.body(), headers + extra)


def sse_error_event(error: RegoloError) -> bytes:
    return b"data: " + json.dumps(error.body(), separators=(",", ":")).encode() + b"\n\n"
