"""Small raw-ASGI helpers shared by the middleware and the top-level dispatcher."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from regolo.server.errors import RegoloError

Scope = dict[str, Any]
Message = dict[str, Any]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def request_id_for(scope: Scope) -> str:
    """Honour a well-formed incoming ``x-request-id``; otherwise mint one."""
    incoming = header(scope, b"x-request-id")
    if incoming and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return f"req_{secrets.token_hex(12)}"


def bearer_token(scope: Scope) -> str | None:
    value = header(scope, b"authorization")
    if not value or len(value) > 512:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def send_json(
    send: Any, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


async def send_error(send: Any, error: RegoloError, request_id: str) -> None:
    await send_json(
        send, error.status_code, error.body(), {**error.headers, "x-request-id": request_id}
    )
