"""Parsing a batch input file: three accepted line formats, errors that name the line.

* OpenAI: ``{"custom_id", "method": "POST", "url", "body": {...}}``
* params: ``{"custom_id", "params": {...}}``
* bare:   ``{"model", "messages", ...}`` (``custom_id`` optional: ``request-<line>``)

Everything here is pure: bytes in, parsed lines and errors out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from regolo.server.batch.limits import BatchLimits

SUPPORTED_URLS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
MAX_CUSTOM_ID_CHARS = 128
_OPENAI_KEYS = frozenset({"custom_id", "method", "url", "body"})


@dataclass(frozen=True, kw_only=True)
class ParsedLine:
    line_no: int  # 1-based, as an editor shows it
    custom_id: str
    body: dict[str, Any]

    @property
    def model(self) -> str | None:
        model = self.body.get("model")
        return model if isinstance(model, str) and model else None


@dataclass(frozen=True, kw_only=True)
class LineError:
    line: int | None
    code: str
    message: str
    param: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


class _Invalid(Exception):
    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def parse_line(raw: bytes, line_no: int, url: str, limits: BatchLimits) -> ParsedLine:
    """One non-blank line; raises ``LineErrorRaised`` naming ``line_no``."""
    try:
        return _parse(raw, line_no, url, limits)
    except _Invalid as invalid:
        error = LineError(
            line=line_no,
            code=invalid.code,
            message=f"line {line_no}: {invalid.message}",
            param=invalid.param,
        )
        raise LineErrorRaised(error) from None


class LineErrorRaised(Exception):
    def __init__(self, error: LineError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class ParseResult:
    lines: list[ParsedLine]
    errors: list[LineError]


def parse_lines(raw_lines: Iterable[bytes], url: str, limits: BatchLimits) -> ParseResult:
    """Every line of a file; stops collecting errors at ``limits.max_validation_errors``."""
    result = ParseResult(lines=[], errors=[])
    seen: dict[str, int] = {}
    for line_no, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        if len(result.lines) + len(result.errors) >= limits.max_lines:
            result.errors.append(_over_lines(line_no, limits))
            break
        try:
            parsed = parse_line(raw, line_no, url, limits)
        except LineErrorRaised as raised:
            result.errors.append(raised.error)
        else:
            first = seen.setdefault(parsed.custom_id, line_no)
            if first != line_no:
                result.errors.append(_duplicate(parsed, first))
            else:
                result.lines.append(parsed)
        if len(result.errors) >= limits.max_validation_errors:
            break
    if not result.lines and not result.errors:
        result.errors.append(
            LineError(line=None, code="empty_file", message="the file has no requests")
        )
    return result


def _parse(raw: bytes, line_no: int, url: str, limits: BatchLimits) -> ParsedLine:
    if len(raw) > limits.max_line_bytes:
        raise _Invalid("line_too_large", f"the line exceeds {limits.max_line_bytes} bytes")
    try:
        item = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _Invalid("invalid_json", "not valid JSON") from None
    if not isinstance(item, dict):
        raise _Invalid("invalid_json", "a line must be a JSON object")
    if _OPENAI_KEYS & (item.keys() - {"custom_id"}):
        custom_id, body = _openai_format(item, url)
    elif "params" in item:
        custom_id, body = _custom_id(item), _object(item.get("params"), "params")
        _only(item, {"custom_id", "params"})
    elif "messages" in item or "model" in item or "input" in item or "prompt" in item:
        body = dict(item)
        custom_id = _custom_id(body) if "custom_id" in body else f"request-{line_no}"
        body.pop("custom_id", None)
    else:
        raise _Invalid(
            "unknown_format", "expected custom_id with body or params, or model and messages"
        )
    _check_body(body, url)
    return ParsedLine(line_no=line_no, custom_id=custom_id, body=body)


def _openai_format(item: dict[str, Any], url: str) -> tuple[str, dict[str, Any]]:
    _only(item, set(_OPENAI_KEYS))
    custom_id = _custom_id(item)
    if item.get("method", "POST") != "POST":
        raise _Invalid("invalid_method", "method must be POST", "method")
    line_url = item.get("url")
    if line_url is None or str(line_url).rstrip("/") != url:
        raise _Invalid("invalid_url", f"url must be {url}, the batch's endpoint", "url")
    return custom_id, _object(item.get("body"), "body")


def _custom_id(item: dict[str, Any]) -> str:
    custom_id = item.get("custom_id")
    if custom_id is None:
        raise _Invalid("missing_custom_id", "custom_id is missing", "custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID_CHARS:
        raise _Invalid(
            "invalid_custom_id",
            f"custom_id must be a string of 1 to {MAX_CUSTOM_ID_CHARS} characters",
            "custom_id",
        )
    return custom_id


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid("invalid_body", f"{param} must be a JSON object", param)
    return value


def _only(item: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(item.keys() - allowed)
    if unknown:
        raise _Invalid("unknown_field", f"unknown field {unknown[0][:40]!r}", unknown[0][:40])


def _check_body(body: dict[str, Any], url: str) -> None:
    if body.get("stream"):
        raise _Invalid("invalid_body", "stream is not supported in a batch", "stream")
    if url.endswith("/chat/completions") and not isinstance(body.get("messages"), list):
        raise _Invalid("invalid_body", "messages must be a list", "messages")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _Invalid("invalid_body", "model must be a string", "model")


def _duplicate(parsed: ParsedLine, first: int) -> LineError:
    return LineError(
        line=parsed.line_no,
        code="duplicate_custom_id",
        message=f"line {parsed.line_no}: custom_id {parsed.custom_id[:64]!r} repeats line {first}",
        param="custom_id",
    )


def _over_lines(line_no: int, limits: BatchLimits) -> LineError:
    return LineError(
        line=line_no,
        code="too_many_requests",
        message=f"line {line_no}: a batch holds at most {limits.max_lines} requests",
    )
