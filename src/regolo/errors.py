"""Typed exceptions for every failure the SDK reports.

    RegoloError                     any failure; carries the server's error fields
    ├── BadRequestError             400, 413, 415, 422
    ├── AuthenticationError         401
    ├── PermissionDeniedError       403
    ├── NotFoundError               404
    ├── ConflictError               409
    ├── RateLimitError              429 (carries retry_after)
    ├── ServerError                 5xx, and error events inside a stream
    └── APIConnectionError          the request or the stream did not complete
        └── APITimeoutError

The server answers ``{"error": {"message", "type", "param", "code"}}`` with an
``x-request-id`` header; ``error_from_response`` turns that into one of these.
"""

from __future__ import annotations

from typing import Any

import httpx


class RegoloError(Exception):
    """Base class: ``except regolo.RegoloError`` catches every SDK failure.

    Example:
        try:
            regolo.get_endpoint("missing")
        except regolo.NotFoundError as error:
            print(error.status_code, error.message, error.request_id)
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None:
            parts.insert(0, f"[{self.status_code}]")
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)


class BadRequestError(RegoloError):
    """The request was invalid (400, 413, 415, 422); ``param`` names the culprit."""


class AuthenticationError(RegoloError):
    """The API key is missing, wrong, expired or revoked (401)."""


class PermissionDeniedError(RegoloError):
    """The API key lacks the scope for this call (403)."""


class NotFoundError(RegoloError):
    """The resource does not exist or this key may not see it (404)."""


class ConflictError(RegoloError):
    """The resource already exists or is in a state that forbids the change (409)."""


class RateLimitError(RegoloError):
    """A rate or concurrency limit was hit (429); wait ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after


class ServerError(RegoloError):
    """The server or a replica failed (5xx, or an error event inside a stream)."""


class APIConnectionError(RegoloError):
    """The server could not be reached, or a stream ended before it completed."""


class APITimeoutError(APIConnectionError):
    """The request took longer than the client's timeout."""


_BY_STATUS: dict[int, type[RegoloError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    415: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_class_for(status_code: int) -> type[RegoloError]:
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    return ServerError if status_code >= 500 else RegoloError


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds; the HTTP-date form is ignored."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from_response(response: httpx.Response) -> RegoloError:
    """Build the typed error for a non-2xx response (its body must already be read)."""
    fields = _error_fields(response)
    message = fields.pop("message")
    cls = error_class_for(response.status_code)
    common: dict[str, Any] = {
        "status_code": response.status_code,
        "request_id": response.headers.get("x-request-id"),
        **fields,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after_seconds(response), **common)
    return cls(message, **common)


def error_from_event(payload: dict[str, Any], request_id: str | None = None) -> RegoloError:
    """Build the error for an ``{"error": {...}}`` event received inside a stream."""
    error = payload.get("error")
    details = error if isinstance(error, dict) else {"message": str(error)}
    return ServerError(
        str(details.get("message") or "the stream failed"),
        type=_str_or_none(details.get("type")),
        code=_str_or_none(details.get("code")),
        param=_str_or_none(details.get("param")),
        request_id=request_id,
    )


def _error_fields(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        # A proxy in front of the server may answer in HTML or plain text.
        text = response.text.strip()[:200] or response.reason_phrase
        return {"message": f"HTTP {response.status_code}: {text}"}
    return {
        "message": str(error.get("message") or f"HTTP {response.status_code}"),
        "type": _str_or_none(error.get("type")),
        "code": _str_or_none(error.get("code")),
        "param": _str_or_none(error.get("param")),
    }


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
