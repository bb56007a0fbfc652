import asyncio

import pytest
from tests.support.fake_openai_server import FakeOpenAIServer

from regolo.server.gateway.upstream import UpstreamDeadline, UpstreamPool, UpstreamUnreachable

pytestmark = pytest.mark.timeout(30)
JSON = [(b"content-type", b"application/json")]


def test_keep_alive_reuse_chunked_stream_and_deadline() -> None:
    server = FakeOpenAIServer("u1").start()

    async def run() -> None:
        pool = UpstreamPool()
        for _ in range(3):
            response = await pool.request(
                server.address, b"POST", b"/v1/chat/completions", JSON, b'{"model":"m"}', 5
            )
            assert response.status == 200 and b"hello from u1" in await response.read()
        stream = await pool.request(
            server.address, b"POST", b"/v1/chat/completions", JSON, b'{"stream":true}', 5
        )
        assert stream.content_type == b"text/event-stream"
        assert (await stream.read()).endswith(b"data: [DONE]\n\n")
        assert len(server.connections) == 1  # one connection served all of them
        server.behaviour.mode = "hang"
        with pytest.raises(UpstreamDeadline):
            await pool.request(server.address, b"POST", b"/v1/chat/completions", JSON, b"{}", 0.2)
        pool.close()

    try:
        asyncio.run(run())
    finally:
        server.stop()


def test_refused_connection_is_unreachable() -> None:
    server = FakeOpenAIServer("gone").start()
    server.stop()

    async def run() -> None:
        with pytest.raises(UpstreamUnreachable):
            await UpstreamPool().request(
                server.address, b"POST", b"/v1/completions", JSON, b"{}", 2
            )

    asyncio.run(run())
