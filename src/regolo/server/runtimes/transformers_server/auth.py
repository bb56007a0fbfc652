"""Bearer-token check in front of every route except ``/health``."""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from regolo.server.errors import Unauthenticated

PUBLIC_PATHS = frozenset({"/health"})


def is_authorized(header: str | None, api_key: str) -> bool:
    if not api_key:
        return True
    scheme, _, token = (header or "").partition(" ")
    # compare_digest keeps the comparison time independent of where the strings differ.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), api_key.encode()
    )


class BearerAuth:
    def __init__(self, app: ASGIApp, *, api_key: str) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        header = headers.get(b"authorization", b"").decode("latin-1")
        if is_authorized(header, self.api_key):
            await self.app(scope, receive, send)
            return
        await _reject(send)


async def _reject(send: Send) -> None:
    error = Unauthenticated()
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
