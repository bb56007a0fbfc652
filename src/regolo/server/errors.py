"""One exception tree for the server, rendered as OpenAI-shaped JSON.

    RegoloError                      500 server_error
    ├── InvalidRequest               400 invalid_request_error
    │   ├── ValidationFailed         422 invalid_request_error
    │   ├── PayloadTooLarge          413 invalid_request_error
    │   ├── UnsupportedMediaType     415 invalid_request_error
    │   └── MethodNotAllowed         405 invalid_request_error
    ├── Unauthenticated              401 authentication_error
    ├── PermissionDenied             403 permission_error
    ├── NotFound                     404 not_found_error
    ├── Conflict                     409 conflict_error
    ├── RateLimited                  429 rate_limit_error   (carries retry_after_seconds)
    ├── UpstreamError                502 upstream_error
    ├── Unavailable                  503 service_unavailable (carries retry_after_seconds)
    └── UpstreamTimeout              504 timeout_error

Foreign errors (SQLAlchemy, httpx, OS) are translated at the edge; their text never
reaches a response.
"""

from __future__ import annotations

import re
from typing import Any

_KEY_IN_TEXT = re.compile(r"(rg_[a-z0-9]{16}_)[A-Za-z0-9_-]{32}")


def redact_keys(text: str) -> str:
    """``text`` with the secret part of anything shaped like an API key masked (S3).

    Error messages quote the caller's input; a key pasted into the wrong field must not
    come back in a response body that proxies and clients log.
    """
    return _KEY_IN_TEXT.sub(r"\1***", text)


class RegoloError(Exception):
    status_code = 500
    error_type = "server_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str = "internal server error",
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": redact_keys(self.message),
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(RegoloError):
    status_code = 400
    error_type = "invalid_request_error"


class ValidationFailed(InvalidRequest):
    status_code = 422


class PayloadTooLarge(InvalidRequest):
    status_code = 413
    default_code = "payload_too_large"


class UnsupportedMediaType(InvalidRequest):
    status_code = 415
    default_code = "unsupported_media_type"


class MethodNotAllowed(InvalidRequest):
    status_code = 405
    default_code = "method_not_allowed"


class Unauthenticated(RegoloError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"

    def __init__(self, message: str = "invalid or missing API key", **kw: Any) -> None:
        super().__init__(message, **kw)


class PermissionDenied(RegoloError):
    status_code = 403
    error_type = "permission_error"


class NotFound(RegoloError):
    status_code = 404
    error_type = "not_found_error"
    default_code = "not_found"


class Conflict(RegoloError):
    status_code = 409
    error_type = "conflict_error"


class _RetryLater(RegoloError):
    def __init__(self, message: str, *, retry_after_seconds: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_seconds = retry_after_seconds
        self.headers.setdefault("Retry-After", str(max(1, round(retry_after_seconds))))


class RateLimited(_RetryLater):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamError(RegoloError):
    status_code = 502
    error_type = "upstream_error"


class Unavailable(_RetryLater):
    status_code = 503
    error_type = "service_unavailable"


class UpstreamTimeout(RegoloError):
    status_code = 504
    error_type = "timeout_error"
