"""Replica entry point for GGUF models: llama.cpp's own HTTP server, through xllamacpp.

    python -m regolo.server.runtimes.llamacpp_main --model M.gguf --host H --port P ...

The bearer token comes from ``REGOLO_REPLICA_TOKEN`` (never argv, which any local user
can read with ``ps``). On SIGTERM or SIGINT the server stops taking new work only after
the requests in flight finish, bounded by ``--drain-seconds``, then exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

TOKEN_ENV = "REGOLO_REPLICA_TOKEN"
_BUSY_METRICS = ("llamacpp:requests_processing", "llamacpp:requests_deferred")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="regolo-llamacpp-replica")
    parser.add_argument("--model", required=True, help="path of the .gguf file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-model-name", default="model")
    parser.add_argument("--parallel", type=int, default=4, help="concurrent request slots")
    parser.add_argument("--ctx-size", type=int, default=2048, help="context tokens per slot")
    parser.add_argument("--threads", type=int, default=0, help="0: llama.cpp decides")
    parser.add_argument("--n-gpu-layers", type=int, default=0)
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    parser.add_argument(
        "--http-threads", type=int, default=64, help="connections served at once, idle ones too"
    )
    parser.add_argument(
        "--default-max-tokens", type=int, default=-1, help="for requests without max_tokens"
    )
    return parser.parse_args(argv)


def build_params(args: argparse.Namespace, token: str) -> Any:
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.api_keys = [token] if token else []
    params.model_alias = {args.served_model_name}
    params.n_parallel = args.parallel
    # llama.cpp splits n_ctx across the slots; we promise ctx_size to every request.
    params.n_ctx = args.ctx_size * args.parallel
    params.n_gpu_layers = args.n_gpu_layers
    params.n_predict = args.default_max_tokens  # a default: a request's max_tokens wins
    if args.threads > 0:
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
    params.n_threads_http = args.http_threads
    params.ui = False  # the replica is an API, never a web page
    params.endpoint_slots = False
    params.endpoint_metrics = True  # read in-process to drain; the route still needs the token
    return params


def busy_requests(metrics_text: str) -> int:
    """Requests running or queued, from llama.cpp's Prometheus text."""
    busy = 0
    for line in metrics_text.splitlines():
        name, _, value = line.partition(" ")
        if name in _BUSY_METRICS:
            busy += int(float(value))
    return busy


def drain(server: Any, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        metrics = server.handle_metrics()
        if not isinstance(metrics, str) or busy_requests(metrics) == 0:
            return
        time.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "")
    import xllamacpp as xlc

    # Until the model is loaded SIGTERM keeps its default action: die at once.
    server = xlc.Server(build_params(args, token))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"regolo replica ready at {server.listening_address}", flush=True)
    while not stop.wait(1.0):
        pass
    drain(server, args.drain_seconds)
    del server  # joins llama.cpp's loop and closes the socket
    print("regolo replica stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
