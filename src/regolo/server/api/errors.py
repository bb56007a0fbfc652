"""Render every error from the control API as OpenAI-shaped JSON."""

from __future__ import annotations

import logging
from typing import Any

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
from regolo.server.middleware import _BodyTooLarge

log = logging.getLogger("regolo.api")


def _render(error: RegoloError) -> JSONResponse:
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


ERROR_STATUSES = {
    "400": "Invalid request",
    "401": "Missing or invalid API key",
    "403": "The key lacks the scope",
    "404": "Not found (or not yours)",
    "409": "Conflict",
    "413": "Request body too large",
    "415": "Request body is not JSON",
    "422": "Validation failed (names the field)",
    "429": "Rate limited",
    "503": "Unavailable; retry after Retry-After",
}
ERROR_SCHEMA: dict[str, Any] = {
    "title": "ErrorResponse",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def document_errors(app: FastAPI) -> None:
    """Declare the OpenAI-shaped error responses on every operation of ``/openapi.json``.

    FastAPI's default 422 schema (``HTTPValidationError``) is not what the handlers
    send, so clients and schema checkers (R19) would be misled without this.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["ErrorResponse"] = ERROR_SCHEMA
        reference = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if "health" in operation.get("tags", ()):
                    continue  # public probes answer only their own status shape
                responses = operation.setdefault("responses", {})
                if "HTTPValidationError" in str(responses.get("422", "")):
                    del responses["422"]
                for status, description in ERROR_STATUSES.items():
                    responses.setdefault(status, {"description": description, "content": reference})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    document_errors(app)

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
            error: RegoloError = InvalidRequest("method not allowed", code="method_not_allowed")
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
