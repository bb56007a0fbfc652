"""The feature-cost baseline: a bare pass-through on the gateway's own server stack.

Raw ASGI under uvicorn (httptools + uvloop) forwarding every POST body to one upstream
through the gateway's ``UpstreamPool``: no auth, routing, limits, cache or metrics.

    python benchmarks/passthrough.py --port 8201 --upstream http://127.0.0.1:8101
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from regolo.server.gateway.upstream import UpstreamPool

Message = MutableMapping[str, Any]


def passthrough_app(upstream: str) -> Callable[..., Awaitable[None]]:
    pool = UpstreamPool()
    json_type = [(b"content-type", b"application/json")]

    async def app(scope: Message, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope["type"] != "http":
            return
        message = await receive()
        body = message.get("body", b"")
        while message.get("more_body"):
            message = await receive()
            body += message.get("body", b"")
        path = scope["path"].encode()
        response = await pool.request(upstream, b"POST", path, json_type, body, 60.0)
        data = await response.read()
        headers = [(b"content-type", response.content_type), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8201)
    parser.add_argument("--upstream", default="http://127.0.0.1:8101")
    args = parser.parse_args()
    uvicorn.run(
        passthrough_app(args.upstream), host="127.0.0.1", port=args.port, loop="uvloop",
        http="httptools", log_level="warning", access_log=False, lifespan="off",
    )  # fmt: skip


if __name__ == "__main__":
    main()
