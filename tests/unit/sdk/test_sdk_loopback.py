"""The client over real sockets: a tiny HTTP server on 127.0.0.1 in a thread."""

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import regolo


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        body = json.loads(self.rfile.read(length))
        if self.headers.get("authorization") != "Bearer rk_live":
            self._json(
                401,
                {
                    "error": {
                        "message": "invalid API key",
                        "type": "authentication_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            )
        elif body.get("stream"):
            self._stream(["Hel", "lo"], done=self.path.startswith("/endpoints/ok/"))
        else:
            reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}]}
            self._json(200, reply)

    def _json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-request-id", "req_live")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, parts: list[str], *, done: bool) -> None:
        # No content-length: the stream ends when the connection closes, chunk by chunk.
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        for part in parts:
            event = {"choices": [{"index": 0, "delta": {"content": part}}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        if done:
            self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _client(url: str, key: str = "rk_live", **kwargs: Any) -> regolo.RegoloClient:
    return regolo.RegoloClient(api_key=key, endpoint_url=url, timeout=10, **kwargs)


def test_chat_and_stream_over_loopback(server_url: str) -> None:
    with _client(f"{server_url}/endpoints/ok") as client:
        reply = client.static_chat_completions([{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Hi"
        assert "".join(client.chat_stream([{"role": "user", "content": "hi"}])) == "Hello"


def test_stream_closed_without_done_is_an_error(server_url: str) -> None:
    with _client(f"{server_url}/endpoints/cut") as client:
        with pytest.raises(regolo.APIConnectionError):
            list(client.chat_stream([{"role": "user", "content": "hi"}]))


def test_wrong_key_over_loopback(server_url: str) -> None:
    with _client(server_url, key="wrong") as client:
        with pytest.raises(regolo.AuthenticationError) as caught:
            client.static_chat_completions([{"role": "user", "content": "hi"}], model="m")
    assert caught.value.request_id == "req_live" and caught.value.code == "invalid_api_key"


def test_nothing_listening() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _client(f"http://127.0.0.1:{port}", max_retries=1) as client:
        client._http.sleep = lambda seconds: None
        with pytest.raises(regolo.APIConnectionError):
            client.static_chat_completions([{"role": "user", "content": "hi"}], model="m")
