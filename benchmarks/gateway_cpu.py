"""CPU per request of the gateway's own work, measured in-process: steadier than wrk.

uvicorn's real httptools protocol is fed raw HTTP requests through an in-memory
transport, and the upstream pool answers at once with a canned chat completion, so
the sockets and the upstream cost nothing and what is left is the server stack plus
what each app does (the gateway as plain Python, even where a compiled build is
installed). Three apps in one run, each in a fresh process:

- ``passthrough``: benchmarks/passthrough.py, the feature-cost baseline;
- ``gateway``: the full gateway (a real key check, routing, limits, usage records);
- ``gateway_no_metrics``: the same, with the usage record step switched off.

The difference between the first two is the feature cost per request; the share it
would take of a real pass-through's time is what ``gateway.py`` measures over sockets.

    python benchmarks/gateway_cpu.py [--requests 30000] [--rounds 3] > gateway_cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from benchmarks.gateway import BODY, KEY  # noqa: E402

ANSWER = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"bench-endpoint",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,'
    b'"total_tokens":12}}'
)
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8301\r\n"
    b"Content-Type: application/json\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY.encode()
)
APPS = ("passthrough", "gateway", "gateway_no_metrics")


class _Transport:
    """What uvicorn's protocol needs of a socket transport; written bytes are counted."""

    def __init__(self) -> None:
        self.written = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8301), "peername": ("127.0.0.1", 40000)}.get(
            name, default
        )

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _AnsweredConnection:
    """Stands in for the pool's connection behind an already complete response."""

    def resume(self) -> None:
        pass

    def pause(self) -> None:
        pass

    def abort(self, error: object) -> None:
        pass


def _instant_upstream() -> None:
    """Every ``UpstreamPool.request`` returns the canned answer without any I/O."""
    from regolo.server.gateway.upstream import UpstreamPool, UpstreamResponse

    connection = _AnsweredConnection()

    async def request(self: Any, *args: Any) -> UpstreamResponse:
        response = UpstreamResponse(connection, asyncio.get_running_loop())  # type: ignore[arg-type]
        response.status, response.content_type = 200, b"application/json"
        response.headers_ready.set_result(None)
        response._push(ANSWER)
        response.done = True
        return response

    UpstreamPool.request = request  # type: ignore[method-assign]


def _app(name: str) -> Any:
    import regolo.server.gateway
    from regolo.server.gateway._build import deactivate

    # gateway_no_metrics replaces a method, which compiled classes refuse: plain Python
    # for every app, so all three are alike.
    deactivate(regolo.server.gateway.__path__)
    if name == "passthrough":
        from benchmarks.passthrough import passthrough_app

        return passthrough_app("http://127.0.0.1:9")
    from benchmarks.gateway import _real_authenticator, bench_table

    from regolo.server.gateway.app import create_gateway
    from regolo.server.gateway.usage import UsageBuffer

    gateway = create_gateway(
        authenticator=_real_authenticator(), endpoint_domain="localhost", usage=UsageBuffer()
    )
    gateway.set_table(bench_table("http://127.0.0.1:9"))
    if name == "gateway_no_metrics":
        gateway._record = lambda call: None  # type: ignore[method-assign]
    return gateway


async def _measure(name: str, requests: int) -> float:
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    from regolo.server.gateway.gc_tuning import tune_gc_for_serving

    _instant_upstream()
    app = _app(name)
    usage = getattr(app, "usage", None)
    config = Config(app=app, http="httptools", lifespan="off", log_level="warning")
    config.load()
    state = ServerState()
    protocol = HttpToolsProtocol(config=config, server_state=state, app_state={})
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    tune_gc_for_serving()  # as the gateway's lifespan does, for every app alike

    async def serve(count: int) -> None:
        for i in range(count):
            if usage is not None and i % 1000 == 0:
                usage.drain()  # the flusher's part, off the measured path
            protocol.data_received(REQUEST)
            while state.tasks:
                await asyncio.sleep(0)

    await serve(2000)  # warm up: key cache, routing, allocator
    gc.collect()
    started = time.process_time()
    await serve(requests)
    used = time.process_time() - started
    if transport.written < requests * len(ANSWER):
        raise RuntimeError(f"{name}: the answers did not all go out")
    return used / requests * 1e6


def run_one(name: str, requests: int) -> float:
    import uvloop

    return uvloop.run(_measure(name, requests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", choices=APPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(run_one(args.one, args.requests))
        return
    samples: dict[str, list[float]] = {name: [] for name in APPS}
    for _ in range(args.rounds):
        for name in APPS:  # alternate, so drift hits every app alike
            out = subprocess.run(
                [sys.executable, __file__, "--one", name, "--requests", str(args.requests)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            samples[name].append(round(float(out.stdout.strip()), 3))
    cpu = {name: statistics.median(values) for name, values in samples.items()}
    features = cpu["gateway"] - cpu["passthrough"]
    metrics = cpu["gateway"] - cpu["gateway_no_metrics"]
    print(
        json.dumps(
            {
                "requests_per_round": args.requests,
                "rounds": args.rounds,
                "cpu_us_per_request": samples,
                "median_cpu_us_per_request": cpu,
                "gateway_feature_cost_us": round(features, 3),
                "metrics_record_cost_us": round(metrics, 3),
                "metrics_share_of_gateway_cpu": round(metrics / cpu["gateway"], 4),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
