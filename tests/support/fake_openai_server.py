"""A minimal, fast OpenAI-compatible server for tests and benchmarks (raw asyncio + httptools).

It answers chat completions, completions and embeddings, streams N chunks on request,
and can be told to misbehave: answer with a status, hang, be slow, close before
answering, or reset a stream after N bytes. It counts requests and the requests whose
client went away (cancellations), and reports its own id in every answer so tests can
count a traffic split. Runs in a thread (``start()``) or as a process (``python -m``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from dataclasses import dataclass, field

import httptools


@dataclass
class Behaviour:
    mode: str = "ok"  # ok | status | hang | slow | close | reset_after
    status_code: int = 500
    delay_seconds: float = 0.0  # "slow": before answering
    reset_after_bytes: int = 0  # "reset_after": stream this many body bytes, then reset
    stream_chunks: int = 5
    chunk_delay_seconds: float = 0.0


@dataclass
class Counters:
    requests: int = 0
    cancellations: int = 0
    bodies: list[bytes] = field(default_factory=list)
    authorizations: list[bytes] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)


def _completion(replica_id: str, model: str, path: bytes) -> bytes:
    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    if path.endswith(b"/embeddings"):
        data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]
        payload: dict[str, object] = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": usage,
        }
    elif path.endswith(b"/chat/completions"):
        message = {"role": "assistant", "content": f"hello from {replica_id}"}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        payload = {
            "id": f"chatcmpl-{replica_id}",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
    else:
        choice = {"index": 0, "text": f"hello from {replica_id}", "finish_reason": "stop"}
        payload = {
            "id": f"cmpl-{replica_id}",
            "object": "text_completion",
            "created": 1,
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
    return json.dumps(payload).encode()


def _chunk_event(replica_id: str, model: str, index: int, last: bool) -> bytes:
    delta = {} if last else {"content": f"tok{index} "}
    choice = {"index": 0, "delta": delta, "finish_reason": "stop" if last else None}
    payload = {
        "id": f"chatcmpl-{replica_id}",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [choice],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


class _Connection(asyncio.Protocol):
    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.busy = False
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.busy:
            self.server.counters.cancellations += 1
            self.server.counters.cancelled.set()
        if self.task is not None:
            self.task.cancel()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body, url, headers = b"".join(self.body), self.url, self.headers
        self.body, self.url, self.headers = [], b"", {}
        self.server.counters.requests += 1
        self.server.counters.authorizations.append(headers.get(b"authorization", b""))
        if self.server.record_bodies:
            self.server.counters.bodies.append(body)
        behaviour = self.server.behaviour
        if (
            behaviour.mode == "ok"
            and not body.count(b'"stream":true')
            and not body.count(b'"stream": true')
        ):
            self._write_json(200, _completion(self.server.replica_id, _model(body), url))
            return
        self.busy = True
        self.task = asyncio.get_running_loop().create_task(self._answer(url, body, behaviour))

    def _write_json(self, status: int, payload: bytes) -> None:
        head = (
            b"HTTP/1.1 %d OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nx-replica-id: %s\r\n\r\n"
        )
        self.transport.write(
            head % (status, len(payload), self.server.replica_id.encode()) + payload
        )  # type: ignore[union-attr]

    async def _answer(self, url: bytes, body: bytes, behaviour: Behaviour) -> None:
        transport = self.transport
        assert transport is not None
        if behaviour.mode == "close":
            transport.abort()
            return
        if behaviour.mode == "hang":
            await asyncio.sleep(3600)
        if behaviour.mode == "slow":
            await asyncio.sleep(behaviour.delay_seconds)
        if behaviour.mode == "status":
            error = {
                "error": {
                    "message": "fake failure",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            self.busy = False
            self._write_json(behaviour.status_code, json.dumps(error).encode())
            return
        if b'"stream":true' in body or b'"stream": true' in body:
            await self._stream(body, behaviour)
        else:
            self.busy = False
            self._write_json(200, _completion(self.server.replica_id, _model(body), url))

    async def _stream(self, body: bytes, behaviour: Behaviour) -> None:
        transport = self.transport
        assert transport is not None
        head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\nx-replica-id: %s\r\n\r\n"
        )
        transport.write(head % self.server.replica_id.encode())
        model, sent = _model(body), 0
        events = [
            _chunk_event(self.server.replica_id, model, i, i == behaviour.stream_chunks)
            for i in range(behaviour.stream_chunks + 1)
        ]
        events.append(b"data: [DONE]\n\n")
        for event in events:
            if behaviour.mode == "reset_after" and sent + len(event) > behaviour.reset_after_bytes:
                part = event[: behaviour.reset_after_bytes - sent]
                if part:
                    transport.write(b"%x\r\n%s\r\n" % (len(part), part))
                await asyncio.sleep(0.05)
                self.busy = False
                transport.abort()
                return
            transport.write(b"%x\r\n%s\r\n" % (len(event), event))
            sent += len(event)
            if behaviour.chunk_delay_seconds:
                await asyncio.sleep(behaviour.chunk_delay_seconds)
        self.busy = False
        transport.write(b"0\r\n\r\n")


def _model(body: bytes) -> str:
    try:
        model = json.loads(body).get("model")
    except (ValueError, AttributeError):
        return "unknown"
    return model if isinstance(model, str) else "unknown"


class FakeOpenAIServer:
    def __init__(
        self, replica_id: str = "replica-1", *, port: int = 0, record_bodies: bool = True
    ) -> None:
        self.replica_id = replica_id
        self.port = port
        self.record_bodies = record_bodies
        self.behaviour = Behaviour()
        self.counters = Counters()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.connections: set[_Connection] = set()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self._server

    def start(self) -> FakeOpenAIServer:
        """Serve from a background thread; returns once the port is open."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            loop.run_until_complete(self.serve())
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name=f"fake-{self.replica_id}")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake server did not start")
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection, like a killed process."""
        loop, server = self._loop, self._server
        if loop is None or server is None or loop.is_closed():
            return

        def shutdown() -> None:
            server.close()
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.abort()
            loop.stop()

        loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(5)
        self._server = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--id", default="replica-1")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    server = FakeOpenAIServer(args.id, port=args.port, record_bodies=False)

    async def run() -> None:
        await (await server.serve()).serve_forever()

    print(f"fake upstream {args.id} on {server.address}", file=sys.stderr, flush=True)
    asyncio.run(run())


if __name__ == "__main__":
    main()


class ServedApp:
    """An ASGI app (the gateway, in tests) served by real uvicorn on loopback from a thread."""

    def __init__(self, app: object, *, loop: str = "asyncio") -> None:
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", loop=loop,
            http="httptools", timeout_graceful_shutdown=1,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True, name="uvicorn")

    def __enter__(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
