"""Security headers and the answers given to requests without a session (S1)."""

from __future__ import annotations

from typing import Any

from regolo.server.asgi import Message, header

# No inline script or style anywhere: every script and stylesheet is a file under /ui/static.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Invoices are the billing API's own HTML (inline styles, never scripts).
INVOICE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"
)

HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def with_security_headers(send: Any, request_id: str) -> Any:
    async def send_secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
            if b"content-security-policy" not in present:
                extra.append((b"content-security-policy", CSP.encode()))
            if b"cache-control" not in present:
                extra.append((b"cache-control", b"no-store"))
            extra.append((b"x-request-id", request_id.encode()))
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_secured


def wants_html(scope: dict[str, Any]) -> bool:
    return scope.get("method") == "GET" and "text/html" in (header(scope, b"accept") or "")
