"""Reading and checking an inference request body before anything is forwarded (S12)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from regolo.server.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


@dataclass(frozen=True, kw_only=True)
class BodyLimits:
    max_body_bytes: int = 4 * 1024 * 1024
    max_tokens_cap: int = 32_768
    n_cap: int = 8


async def read_body(receive: Receive, content_length: bytes | None, max_bytes: int) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):  # the usual case: the server had it all in one read
        if message["type"] == "http.disconnect":
            raise ClientGone
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
        return body
    # More is coming: refuse a declared size past the limit before reading any further.
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    parts = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


def check_content_type(content_type: bytes | None) -> None:
    if content_type == b"application/json":  # what clients send, as is
        return
    media = (content_type or b"").partition(b";")[0].strip().lower()
    if media != b"application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)  # plain UTF-8 JSON, as every real client sends
    except orjson.JSONDecodeError:
        try:  # what the standard parser also takes: a BOM, UTF-16, NaN, huge integers
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object")
    return payload


_CAPPED = frozenset({"max_tokens", "max_completion_tokens", "n", "stream"})


def check_caps(payload: dict[str, Any], limits: BodyLimits) -> None:
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("model must be a string", param="model")
    present = payload.keys() & _CAPPED  # in C; most requests set one or two of them
    if present:
        _check_present(payload, present, limits)


def _check_present(payload: dict[str, Any], present: set[str], limits: BodyLimits) -> None:
    for param in sorted(present):  # one order, so the same body gets the same error
        if param == "stream":
            if payload[param] is not None and not isinstance(payload[param], bool):
                raise InvalidRequest("stream must be a boolean", param="stream")
        elif param == "n":
            _check_int(payload, param, limits.n_cap, minimum=1)
        else:
            _check_int(payload, param, limits.max_tokens_cap, minimum=1)


def _check_int(payload: dict[str, Any], param: str, cap: int, *, minimum: int) -> None:
    value = payload.get(param)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"{param} must be an integer", param=param)
    if value < minimum or value > cap:
        raise InvalidRequest(f"{param} must be between {minimum} and {cap}", param=param)
