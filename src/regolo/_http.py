"""One HTTP session per client: auth header, retries, error mapping, SSE streams.

A call goes ``request`` -> ``_send`` (retries) -> httpx -> ``_decode``. Foreign
errors (httpx) are translated here and nowhere else.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from regolo._sse import iter_sse_data
from regolo.errors import (
    APIConnectionError,
    APITimeoutError,
    RegoloError,
    ServerError,
    error_from_response,
    retry_after_seconds,
)

# As the OpenAI client: a long generation on a busy CPU replica may take minutes.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
DEFAULT_MAX_RETRIES = 2
MAX_RETRY_DELAY_SECONDS = 30.0
_RETRY_STATUSES = frozenset({429, 503})  # the server did not process the request
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Sleep = Callable[[float], None]


class HTTPSession:
    """Sends requests to one server with one API key.

    Retries only what is safe to send again: a request that never reached the
    server, a 429/503 (not processed), and a control-plane write that carries an
    ``Idempotency-Key`` (the server answers a repeat with the original response).
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.transport = transport
        self.sleep = sleep
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """Send one request and return its decoded JSON body (``None`` when empty)."""
        request = self._build(method, url, json=json, params=params, idempotent=idempotent)
        response = self._send(request, stream=False)
        return _decode(response)

    def stream(self, url: str, *, json: Any) -> Iterator[str]:
        """POST and yield the ``data`` of each server-sent event, ``[DONE]`` included."""
        request = self._build("POST", url, json=json, params=None, idempotent=False)
        response = self._send(request, stream=True)
        try:
            yield from iter_sse_data(response.iter_lines())
        except httpx.TransportError as exc:
            raise _connection_error(exc) from exc
        finally:
            response.close()

    def close(self) -> None:
        self._client.close()

    def _build(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        params: dict[str, Any] | None,
        idempotent: bool,
    ) -> httpx.Request:
        headers = {}
        if idempotent and method in _WRITE_METHODS:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return self._client.build_request(method, url, json=json, params=params, headers=headers)

    def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._client.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries or not _may_resend(request, exc):
                    raise _connection_error(exc) from exc
                self.sleep(_backoff_seconds(attempt))
                attempt += 1
                continue
            delay = _retry_delay(response, attempt, self.max_retries)
            if delay is None:
                break
            response.close()
            self.sleep(delay)
            attempt += 1
        if response.is_error:
            response.read()
            response.close()
            raise error_from_response(response)
        return response


def _may_resend(request: httpx.Request, exc: httpx.TransportError) -> bool:
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
    safe = request.method == "GET" or "Idempotency-Key" in request.headers
    return never_sent or safe


def _retry_delay(response: httpx.Response, attempt: int, max_retries: int) -> float | None:
    """Seconds to wait before sending again, or ``None`` to keep this response."""
    if response.status_code not in _RETRY_STATUSES or attempt >= max_retries:
        return None
    delay = retry_after_seconds(response)
    if delay is None:
        return _backoff_seconds(attempt)
    return delay if delay <= MAX_RETRY_DELAY_SECONDS else None


def _backoff_seconds(attempt: int) -> float:
    return min(0.5 * 2**attempt, 8.0)


def _decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise ServerError(
            "the server answered with a body that is not JSON",
            status_code=response.status_code,
            request_id=response.headers.get("x-request-id"),
        ) from exc


def _connection_error(exc: httpx.TransportError) -> RegoloError:
    url = str(exc.request.url) if _has_request(exc) else "the server"
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"request to {url} timed out")
    return APIConnectionError(f"could not complete the request to {url}: {type(exc).__name__}")


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - httpx raises when the error has no request
    except RuntimeError:
        return False
    return True


def list_data(body: Any) -> list[Any]:
    """The items of a list response: ``{"object": "list", "data": [...]}`` or a bare list."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return body["data"]
    if isinstance(body, list):
        return body
    raise ServerError("the server answered a list request with something that is not a list")
