"""Sending one batch line to a replica and turning the answer into a ``LineResult``.

Retries only what the replica did not process: an unreachable replica and 502/503/504
answers. Anything else the replica says (a 400 included) is the line's result.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from regolo.server.batch.jobs import ClaimedLine, LineResult
from regolo.server.errors import InvalidRequest
from regolo.server.gateway.request_body import BodyLimits, check_caps
from regolo.server.gateway.routing_table import RouteDeployment, RouteReplica

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


def upstream_body(claimed: ClaimedLine, deployment: RouteDeployment) -> bytes:
    body = dict(claimed.body)
    body["model"] = deployment.served_model_name
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


async def send_once(
    client: httpx.AsyncClient,
    replica: RouteReplica,
    url: str,
    body: bytes,
    timeout_seconds: float,
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if replica.auth_token:
        headers["authorization"] = f"Bearer {replica.auth_token}"
    return await client.post(
        f"{replica.address.rstrip('/')}{url}",
        content=body,
        headers=headers,
        timeout=timeout_seconds,
    )


def result_of(response: httpx.Response, fallback_request_id: str) -> LineResult:
    text = response.text
    try:
        json.loads(text)
    except ValueError:
        text = json.dumps({"error": {"message": text[:MAX_ERROR_TEXT], "type": "upstream_error"}})
    return LineResult(
        request_id=response.headers.get("x-request-id") or fallback_request_id,
        status_code=response.status_code,
        response_body=text,
    )


def unreachable(error: Exception) -> LineResult:
    return LineResult(
        error_code="request_failed",
        error_message=f"the model could not be reached: {type(error).__name__}",
    )


def should_retry(response: httpx.Response | None) -> bool:
    return response is None or response.status_code in RETRY_STATUSES


async def backoff(attempt: int) -> None:
    await asyncio.sleep(min(0.25 * 2**attempt, 5.0))


def usage_tokens(response_body: str | None) -> tuple[int, int]:
    try:
        usage: Any = json.loads(response_body or "{}").get("usage") or {}
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, AttributeError, TypeError):
        return 0, 0
