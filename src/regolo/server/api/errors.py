"""Render every error from the control API as OpenAI-shaped JSON."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from regolo.server.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RegoloError,
    ValidationFailed,
)
from regolo.server.keys import redact_keys
from regolo.server.middleware import _BodyTooLarge

log = logging.getLogger("regolo.api")


def _render(error: RegoloError) -> JSONResponse:
    error.message = redact_keys(error.message)
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


def _validation_error(exc: RequestValidationError) -> ValidationFailed:
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(location) or None
    if first.get("type") == "extra_forbidden":
        message = f"unknown field {param!r}"
    elif first.get("type") == "json_invalid":
        return InvalidRequest("request body is not valid JSON")  # type: ignore[return-value]
    else:
        message = f"{param or 'request'}: {first.get('msg', 'invalid value')}"
    return ValidationFailed(message, param=param)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RegoloError)
    async def _regolo_error(_: Request, exc: RegoloError) -> JSONResponse:
        return _render(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _render(_validation_error(exc))

    @app.exception_handler(HTTPException)
    async def _http_exception(_: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _render(NotFound("no such route"))
        if exc.status_code == 405:
            error = InvalidRequest("method not allowed", code="method_not_allowed")
            error.status_code = 405
            return _render(error)
        error = RegoloError(str(exc.detail))
        error.status_code = exc.status_code
        return _render(error)

    @app.exception_handler(_BodyTooLarge)
    async def _too_large(_: Request, exc: _BodyTooLarge) -> JSONResponse:
        return _render(PayloadTooLarge("request body too large"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _render(RegoloError("internal server error"))
