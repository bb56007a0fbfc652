"""Forwarding one request to a replica and relaying the answer to the client.

A try that fails before any byte came back moves to another replica (R1); once a
response has begun nothing is retried. A stream that breaks upstream ends with an
error event, never with ``[DONE]`` (R2). The endpoint's ``request_timeout_seconds``
bounds a buffered answer, and the wait for each chunk of a stream (R4 -> 504).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from regolo.server.errors import RegoloError, UpstreamError, UpstreamTimeout
from regolo.server.gateway.picker import ReplicaPicker
from regolo.server.gateway.responses import Headers, Send, sse_error_event
from regolo.server.gateway.routing_table import RouteDeployment, RouteReplica
from regolo.server.gateway.upstream import (
    UpstreamDeadline,
    UpstreamFailure,
    UpstreamPool,
    UpstreamResponse,
    UpstreamUnreachable,
)

_PROMPT_TOKENS = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')
# Both counts side by side, in either order (OpenAI and vLLM put prompt_tokens first,
# llama.cpp completion_tokens): one search finds both in the usual answer.
_USAGE_PAIR = re.compile(
    rb'"(prompt|completion)_tokens"\s*:\s*(\d+)\s*,\s*"(?!\1)(?:prompt|completion)_tokens"'
    rb"\s*:\s*(\d+)"
)
_EVENT_STREAM = b"text/event-stream"
UNREACHABLE = "upstream_unreachable"  # the code of the error when no replica took a request


class Outcome:
    """What the relay observed, for usage records and limits.

    A plain class whose defaults are class attributes: one is made for every request,
    and making it is then a single C call where a dataclass runs a Python ``__init__``.
    """

    replica: RouteReplica | None = None
    upstream_status: int = 0
    first_byte_at: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    streamed: bool = False
    complete: bool = True


def count_tokens(body: bytes, outcome: Outcome) -> None:
    # Servers put "usage" last: start there rather than scanning the whole answer.
    start = body.rfind(b'"usage"')
    found = _USAGE_PAIR.search(body, start) if start > 0 else None
    if found is not None:  # the usual shape: one search for both counts
        first, second = int(found[2]), int(found[3])
        if found[1] == b"prompt":
            outcome.prompt_tokens, outcome.completion_tokens = first, second
        else:
            outcome.prompt_tokens, outcome.completion_tokens = second, first
        return
    prompt = _PROMPT_TOKENS.search(body, max(0, start))
    completion = _COMPLETION_TOKENS.search(body, max(0, start))
    if start > 0 and prompt is None and completion is None:  # "usage" was a string value
        prompt = _PROMPT_TOKENS.search(body)
        completion = _COMPLETION_TOKENS.search(body)
    if prompt:
        outcome.prompt_tokens = int(prompt.group(1))
    if completion:
        outcome.completion_tokens = int(completion.group(1))


async def open_upstream(
    pool: UpstreamPool,
    picker: ReplicaPicker,
    deployment: RouteDeployment,
    path: bytes,
    body: bytes,
    timeout_seconds: float,
    max_attempts: int,
    outcome: Outcome,
) -> UpstreamResponse:
    """A response whose headers are in, from the first replica that answers.

    The chosen replica is left in ``outcome.replica`` and counted as outstanding in
    ``picker``; the caller reports how it finished.
    """
    tried: list[str] = []
    for _ in range(max_attempts):
        replica = picker.pick(deployment.replicas, tried)
        if replica is None:
            break
        picker.started(replica.replica_id)
        outcome.replica = replica
        try:
            return await pool.request(
                replica.address, b"POST", path, replica.request_headers, body, timeout_seconds
            )
        except UpstreamUnreachable:
            picker.finished(replica.replica_id, failed=True)
            outcome.replica = None
            tried.append(replica.replica_id)
        except UpstreamDeadline:
            picker.finished(replica.replica_id, failed=True)
            outcome.replica = None
            raise UpstreamTimeout("the model did not answer in time") from None
        except BaseException:
            picker.finished(replica.replica_id, failed=False)  # cancelled: not its fault
            outcome.replica = None
            raise
    raise UpstreamError("no replica of the endpoint could be reached", code=UNREACHABLE)


async def read_rest(response: UpstreamResponse) -> bytes:
    """The whole body of a buffered answer that had not all arrived with its headers."""
    try:
        return await response.read()
    except UpstreamDeadline:
        raise UpstreamTimeout("the model did not answer in time") from None
    except UpstreamFailure:
        raise UpstreamError("the model's response broke off", code="upstream_broken") from None


def is_stream(response: UpstreamResponse) -> bool:
    return response.content_type.startswith(_EVENT_STREAM)


async def relay_stream(
    response: UpstreamResponse,
    send: Send,
    headers: Headers,
    timeout_seconds: float,
    outcome: Outcome,
    on_last_send: Callable[[], None],
) -> None:
    """Pass the event stream on chunk by chunk, as it arrives."""
    outcome.streamed = True
    headers += [(b"content-type", response.content_type), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    ended_cleanly = True
    while True:
        response._conn.extend_deadline(timeout_seconds)
        try:
            chunk = await response.next_chunk()
        except UpstreamFailure as failure:
            outcome.complete = False
            await _send_stream_error(send, failure, ended_cleanly, on_last_send)
            return
        if not chunk:
            break
        if outcome.first_byte_at is None:
            outcome.first_byte_at = time.perf_counter()
        if b'"usage"' in chunk:
            count_tokens(chunk, outcome)
        ended_cleanly = chunk.endswith(b"\n\n")
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    on_last_send()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_stream_error(
    send: Send, failure: UpstreamFailure, ended_cleanly: bool, on_last_send: Callable[[], None]
) -> None:
    error: RegoloError
    if isinstance(failure, UpstreamDeadline):
        error = UpstreamTimeout("the model stopped answering in time")
    else:
        error = UpstreamError("the model's stream broke off", code="upstream_broken")
    # Close any half-sent event first, so the error is an event of its own.
    event = (b"" if ended_cleanly else b"\n\n") + sse_error_event(error)
    on_last_send()
    await send({"type": "http.response.body", "body": event, "more_body": False})
