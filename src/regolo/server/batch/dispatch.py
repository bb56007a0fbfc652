"""Sending one batch line to a replica and turning the answer into a ``LineResult``.

Retries only what the replica did not process: an unreachable replica, an answer cut
off, and 502/503/504 answers. Anything else the replica says (a 400 included) is the
line's result.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from regolo.server.batch import streams
from regolo.server.batch.jobs import ClaimedLine, LineResult
from regolo.server.errors import InvalidRequest
from regolo.server.gateway.request_body import BodyLimits, check_caps
from regolo.server.gateway.routing_table import RouteDeployment, RouteReplica
from regolo.server.gateway.upstream import UpstreamFailure, UpstreamPool, UpstreamResponse

RETRY_STATUSES = frozenset({502, 503, 504})
MAX_ERROR_TEXT = 1000


def check_line(claimed: ClaimedLine, limits: BodyLimits) -> LineResult | None:
    """The gateway's caps apply to batch lines too; a violation is the line's 400."""
    try:
        check_caps(claimed.body, limits)
    except InvalidRequest as error:
        return LineResult(
            request_id=f"req_batch_{claimed.token}",
            status_code=error.status_code,
            response_body=json.dumps(error.body(), separators=(",", ":")),
        )
    return None


def upstream_body(claimed: ClaimedLine, deployment: RouteDeployment) -> dict[str, Any]:
    return {**claimed.body, "model": deployment.served_model_name}


async def send(
    pool: UpstreamPool,
    replica: RouteReplica,
    url: str,
    body: dict[str, Any],
    timeout_seconds: float,
    fallback_request_id: str,
) -> tuple[LineResult, bool]:
    """The line's result, and whether another try is worth it.

    Cancelling the call closes the connection, which stops the generation upstream
    (streamed requests; see ``streams``). ``timeout_seconds`` bounds the whole call.
    """
    stream = streams.streamable(url, body)
    payload = streams.streamed_request(body) if stream else body
    headers = [(b"content-type", b"application/json")]
    if stream:
        # llama.cpp closes the connection after a streamed answer anyway; saying so up
        # front keeps the pool from reusing a connection that is about to go away.
        headers.append((b"connection", b"close"))
    if replica.auth_token:
        headers.append((b"authorization", f"Bearer {replica.auth_token}".encode()))
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    response: UpstreamResponse | None = None
    try:
        async with asyncio.timeout(timeout_seconds):
            response = await pool.request(
                replica.address, b"POST", url.encode(), headers, encoded, timeout_seconds
            )
            request_id = _header(response, b"x-request-id") or fallback_request_id
            if stream and _is_event_stream(response):
                result = await _read_events(response, url, request_id)
            else:
                text = (response.take_complete() or await response.read()).decode(errors="replace")
                result = result_of(response.status, text, request_id)
    except (UpstreamFailure, TimeoutError) as error:
        return unreachable(error), True
    finally:
        if response is not None:
            response.close()  # a no-op once complete; else the replica sees the close
    return result, result.status_code is None or result.status_code in RETRY_STATUSES


def _header(response: UpstreamResponse, name: bytes) -> str | None:
    for key, value in response.headers:
        if key == name:
            return value.decode(errors="replace")
    return None


def _is_event_stream(response: UpstreamResponse) -> bool:
    return response.status == 200 and response.content_type.startswith(b"text/event-stream")


async def _read_events(response: UpstreamResponse, url: str, request_id: str) -> LineResult:
    assembler = streams.Assembler(chat=url.rstrip("/").endswith("/chat/completions"))
    pending = b""
    try:
        while chunk := await response.next_chunk():
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                data = streams.event_data(line.decode().rstrip("\r"))
                if data:
                    assembler.add(data)
    except ValueError:
        return LineResult(
            error_code="request_failed", error_message="the model sent an unreadable stream"
        )
    if assembler.error is not None:
        code = assembler.error.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        body = json.dumps({"error": assembler.error}, separators=(",", ":"), ensure_ascii=False)
        return LineResult(request_id=request_id, status_code=status, response_body=body)
    if not assembler.done:
        return LineResult(
            error_code="request_failed", error_message="the model's answer was cut off"
        )
    body = json.dumps(assembler.body(), separators=(",", ":"), ensure_ascii=False)
    return LineResult(request_id=request_id, status_code=200, response_body=body)


def result_of(status_code: int, text: str, request_id: str) -> LineResult:
    try:
        json.loads(text)
    except ValueError:
        text = json.dumps({"error": {"message": text[:MAX_ERROR_TEXT], "type": "upstream_error"}})
    return LineResult(request_id=request_id, status_code=status_code, response_body=text)


def unreachable(error: Exception) -> LineResult:
    return LineResult(
        error_code="request_failed",
        error_message=f"the model could not be reached: {type(error).__name__}",
    )


async def backoff(attempt: int) -> None:
    await asyncio.sleep(min(0.25 * 2**attempt, 5.0))


def usage_tokens(response_body: str | None) -> tuple[int, int]:
    try:
        usage: Any = json.loads(response_body or "{}").get("usage") or {}
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, AttributeError, TypeError):
        return 0, 0
