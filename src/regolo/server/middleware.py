"""ASGI middleware in front of the control API: request id, auth, body caps, content type.

Authentication happens here, before routing, so that every path and method (known or
not, ``%2e`` and ``//`` included) answers 401 without a valid key, except the short
public list.
"""

from __future__ import annotations

import hmac
from typing import Any

from regolo.server.asgi import Message, Scope, bearer_token, header, request_id_for, send_error
from regolo.server.errors import PayloadTooLarge, RegoloError, Unauthenticated, UnsupportedMediaType
from regolo.server.keys import KeyAuthenticator
from regolo.server.specs import Principal

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
METRICS_PATH = "/metrics"
# What a Prometheus scraper holding the metrics token may be: it reaches /metrics only
# (the middleware grants it nowhere else) and sees every account there.
METRICS_SCRAPER = Principal(
    account_id="", key_id="metrics-token", scopes=frozenset({"admin"}), is_superadmin=True
)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MULTIPART_PATHS = ("/v1/files",)


class ApiMiddleware:
    def __init__(
        self,
        app: Any,
        *,
        authenticator: KeyAuthenticator,
        max_body_bytes: int,
        max_upload_bytes: int | None = None,
        public_prefixes: tuple[str, ...] = (),
        metrics_token: str | None = None,
    ) -> None:
        self.app = app
        self.metrics_token = metrics_token
        self.authenticator = authenticator
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes or max_body_bytes
        self.public_prefixes = public_prefixes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        send = _with_request_id(send, request_id)
        path = scope["path"]
        if path not in PUBLIC_PATHS and not path.startswith(self.public_prefixes):
            token = bearer_token(scope)
            try:
                principal = await self.authenticator.authenticate_async(token) if token else None
            except RegoloError as failure:  # the store is down: 503, never a bare 500
                await send_error(send, failure, request_id)
                return
            if principal is None and path == METRICS_PATH and self._is_metrics_token(token):
                principal = METRICS_SCRAPER
            if principal is None:
                await send_error(send, Unauthenticated(), request_id)
                return
            scope["state"]["principal"] = principal
        error = self._check_body_headers(scope)
        if error is not None:
            await send_error(send, error, request_id)
            return
        await self.app(scope, _capped(receive, self._body_cap(scope)), send)

    def _body_cap(self, scope: Scope) -> int:
        """File uploads (batch inputs) have their own, larger cap."""
        if scope["path"].startswith(MULTIPART_PATHS):
            return self.max_upload_bytes
        return self.max_body_bytes

    def _is_metrics_token(self, token: str | None) -> bool:
        if not token or not self.metrics_token:
            return False
        return hmac.compare_digest(token.encode(), self.metrics_token.encode())

    def _check_body_headers(self, scope: Scope) -> PayloadTooLarge | UnsupportedMediaType | None:
        if scope["method"] not in BODY_METHODS:
            return None
        length = header(scope, b"content-length")
        cap = self._body_cap(scope)
        if length and length.isdigit() and int(length) > cap:
            return PayloadTooLarge(f"request body exceeds {cap} bytes")
        content_type = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if length == "0" or (not length and not content_type):
            return None
        if scope["path"].startswith(MULTIPART_PATHS) and content_type == "multipart/form-data":
            return None
        if content_type != "application/json":
            return UnsupportedMediaType("request body must be application/json")
        return None


class _BodyTooLarge(Exception):
    pass


def _capped(receive: Any, limit: int) -> Any:
    received = 0

    async def capped_receive() -> Message:
        nonlocal received
        message: Message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge
        return message

    return capped_receive


def _with_request_id(send: Any, request_id: str) -> Any:
    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
            headers.append((b"x-request-id", request_id.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return send_with_id


__all__ = ["PUBLIC_PATHS", "ApiMiddleware", "_BodyTooLarge"]
