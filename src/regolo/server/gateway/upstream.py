"""A small keep-alive HTTP/1.1 client for talking to replicas, with a pool per replica.

Built on an asyncio ``Protocol`` and httptools' response parser (both already shipped
with uvicorn[standard]) because general clients cost more per request than the rest of
the gateway together. It speaks only what replicas need: one request at a time per
connection, ``Content-Length`` request bodies, and ``Content-Length``, chunked or
close-delimited response bodies, passed on chunk by chunk as they arrive.

    UpstreamFailure
    ├── UpstreamUnreachable   nothing came back: safe to try another replica
    ├── UpstreamBroken        the response began and then broke
    └── UpstreamDeadline      the per-request deadline passed
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import cast
from urllib.parse import urlsplit

import httptools

_HIGH_WATER_BYTES = 1024 * 1024  # stop reading a replica when the client lags this far
Headers = list[tuple[bytes, bytes]]


class UpstreamFailure(Exception):
    pass


class UpstreamUnreachable(UpstreamFailure):
    pass


class UpstreamBroken(UpstreamFailure):
    pass


class UpstreamDeadline(UpstreamFailure):
    pass


class UpstreamResponse:
    """Status and headers once awaited; the body arrives through ``next_chunk`` or ``read``."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_waiter",
        "content_type",
        "done",
        "error",
        "headers",
        "headers_ready",
        "status",
    )

    def __init__(self, conn: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        self._conn = conn
        self.status = 0
        self.headers: Headers = []
        self.content_type = b""
        self.headers_ready: asyncio.Future[None] = loop.create_future()
        self.done = False
        self.error: UpstreamFailure | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None

    async def next_chunk(self) -> bytes:
        """The next piece of body, ``b""`` at the end; raises ``UpstreamFailure`` if it broke."""
        while not self._chunks:
            if self.error is not None:
                raise self.error
            if self.done:
                return b""
            self._waiter = self._conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._buffered < _HIGH_WATER_BYTES:
            self._conn.resume()
        return chunk

    def take_complete(self) -> bytes | None:
        """The whole body if it has all arrived (the usual case), else ``None``: no await."""
        if not self.done or self.error is not None:
            return None
        chunks, self._chunks = self._chunks, deque()
        self._buffered = 0
        self._conn.resume()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def read(self) -> bytes:
        parts = []
        while chunk := await self.next_chunk():
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Give up on the rest of the body: the replica sees its connection closed."""
        if not self.done:
            self._conn.abort(UpstreamBroken("response abandoned"))

    def _push(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered >= _HIGH_WATER_BYTES:
            self._conn.pause()
        self._wake()

    def _finish(self, error: UpstreamFailure | None) -> None:
        if self.done or self.error is not None:
            return
        if error is None:
            self.done = True
        else:
            self.error = error
        if not self.headers_ready.done():
            self.headers_ready.set_exception(error or UpstreamBroken("empty response"))
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _Connection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool, address: str, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.address = address
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.received_any = False
        self._paused = False
        self._response: UpstreamResponse | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._framed = False  # Content-Length or chunked: the end is not the close
        self._parser = httptools.HttpResponseParser(self)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.abort(UpstreamBroken("malformed response from replica"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        response, self._response = self._response, None
        if response is None:
            return
        if not response.headers_ready.done():
            response._finish(UpstreamUnreachable("replica closed the connection"))
        elif self._framed:
            response._finish(UpstreamBroken("replica closed the connection mid-response"))
        else:
            response._finish(None)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._response is not None
        name = name.lower()
        if name in (b"content-length", b"transfer-encoding"):
            self._framed = True
        elif name == b"content-type":
            self._response.content_type = value
        self._response.headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self._response
        assert response is not None
        response.status = self._parser.get_status_code()
        response.headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._response is not None:
            self._response._push(body)

    def on_message_complete(self) -> None:
        response, self._response = self._response, None
        self._cancel_timer()
        if response is not None:
            response._finish(None)
        if self._parser.should_keep_alive() and not self.closed:
            self.pool._release(self)
        else:
            self.abort(None)

    # used by the pool and the response
    def send(self, payload: bytes, timeout_seconds: float) -> UpstreamResponse:
        assert self.transport is not None
        self._framed = False
        self.received_any = False
        response = self._response = UpstreamResponse(self, self.loop)
        self._timer = self.loop.call_later(timeout_seconds, self._on_deadline)
        self.transport.write(payload)
        return response

    def extend_deadline(self, timeout_seconds: float) -> None:
        """Restart the deadline (streams: the time allowed between two chunks)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self.loop.call_later(timeout_seconds, self._on_deadline)

    def abort(self, error: UpstreamFailure | None) -> None:
        self.closed = True
        self._cancel_timer()
        response, self._response = self._response, None
        if response is not None and error is not None:
            response._finish(error)
        if self.transport is not None:
            self.transport.abort()

    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def _on_deadline(self) -> None:
        self._timer = None
        self.abort(UpstreamDeadline("replica did not answer in time"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class UpstreamPool:
    def __init__(
        self, *, max_idle_per_replica: int = 256, connect_timeout_seconds: float = 5.0
    ) -> None:
        self.max_idle_per_replica = max_idle_per_replica
        self.connect_timeout_seconds = connect_timeout_seconds
        self._idle: dict[str, list[_Connection]] = {}
        self._targets: dict[str, tuple[str, int, bytes]] = {}

    async def request(
        self,
        address: str,
        method: bytes,
        path: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        timeout_seconds: float,
    ) -> UpstreamResponse:
        """Send one request; returns once the status and headers are in."""
        host, port, host_header = self._target(address)
        extra = b"".join([b"%s: %s\r\n" % header for header in headers])
        payload = b"%s %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n%s\r\n%s" % (
            method, path, host_header, len(body), extra, body
        )  # fmt: skip
        conn = self._take_idle(address)
        if conn is not None:
            try:
                return await self._send(conn, payload, timeout_seconds)
            except UpstreamUnreachable:
                if conn.received_any:
                    raise
                # The replica closed an idle connection as we reused it: not its fault.
        conn = await self._connect(address, host, port, timeout_seconds)
        return await self._send(conn, payload, timeout_seconds)

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.abort(None)
        self._idle.clear()

    async def _send(
        self, conn: _Connection, payload: bytes, timeout_seconds: float
    ) -> UpstreamResponse:
        response = conn.send(payload, timeout_seconds)
        try:
            await response.headers_ready
        except asyncio.CancelledError:
            conn.abort(None)
            raise
        return response

    async def _connect(
        self, address: str, host: str, port: int, timeout_seconds: float
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(min(timeout_seconds, self.connect_timeout_seconds)):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, address, loop), host, port
                )
        except TimeoutError:
            raise UpstreamUnreachable("timed out connecting to replica") from None
        except OSError:
            raise UpstreamUnreachable("could not connect to replica") from None
        return conn

    def _take_idle(self, address: str) -> _Connection | None:
        idle = self._idle.get(address)
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                conn.reused = True
                return conn
        return None

    def _release(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.address, [])
        if len(idle) < self.max_idle_per_replica:
            idle.append(conn)
        else:
            conn.abort(None)

    def _target(self, address: str) -> tuple[str, int, bytes]:
        target = self._targets.get(address)
        if target is None:
            parts = urlsplit(address)
            if parts.scheme != "http" or not parts.hostname:
                raise UpstreamUnreachable("unsupported replica address")
            port = parts.port or 80
            target = self._targets[address] = (parts.hostname, port, parts.netloc.encode())
        return target
