"""What metrics recording costs the gateway: throughput with it off and on, same run.

"off": the gateway's ``_record`` step does nothing. "record": records are built and
buffered, then drained and dropped (the request-path share of the cost). "on": every
request builds its ``UsageRecord`` into the ``UsageBuffer`` and the real
``UsageFlusher`` writes the buffer into a fresh SQLite store every few seconds from its
own thread, as the controller does in ``regolo serve``.

All three are one gateway process, switched between rounds (``POST /bench/mode/<m>``):
separate processes differed by a few percent from each other whatever they ran (memory
layout, hash seeds), as much as the cost measured. The gateway is pinned to one core;
the fake upstream and ``wrk`` get the others. Rounds alternate off/on/record so drift
hits all alike.

Two measures of the cost: the drop in throughput (noisy on a shared machine), and the
gateway process's CPU time per request, flusher thread included (steadier: with the
gateway's core saturated, throughput is the inverse of it).

    python benchmarks/metrics_overhead.py [--duration 5] [--rounds 3] > metrics_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from benchmarks.gateway import (  # noqa: E402
    KEY,
    bench_table,
    cpu_seconds,
    free_port,
    other_cpus,
    start,
    us_per_request,
    wait_open,
    write_wrk_script,
    wrk,
)

MODES = ("off", "on", "record")


def serve(port: int, upstream: str) -> None:
    import uvicorn

    import regolo.server.gateway
    from regolo.server.gateway._build import deactivate

    deactivate(regolo.server.gateway.__path__)  # "off" replaces a method: plain Python only

    from regolo.server.gateway.app import Gateway, create_gateway
    from regolo.server.gateway.usage import UsageBuffer
    from regolo.server.specs import Principal

    principal = Principal(account_id="acc", key_id="key", scopes=frozenset({"inference:*"}))

    class Keys:
        def authenticate_cached(self, bearer: str) -> tuple[bool, Principal | None]:
            return True, self.authenticate(bearer)

        def authenticate(self, bearer: str) -> Principal | None:
            return principal if bearer == KEY else None

    usage = UsageBuffer()
    gateway = create_gateway(authenticator=Keys(), endpoint_domain="localhost", usage=usage)
    assert isinstance(gateway, Gateway)
    gateway.set_table(bench_table(upstream))
    mode = ["off"]

    def switch(to: str) -> None:
        if to == "off":
            gateway._record = lambda call: None  # type: ignore[method-assign]
        else:
            gateway.__dict__.pop("_record", None)  # the class's own method again
        mode[0] = to

    switch("off")
    _start_flusher(usage, mode)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if path.startswith("/bench/mode/"):
            switch(path.rsplit("/", 1)[1])
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await gateway(scope, receive, send)

    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
        log_level="warning", access_log=False,
    )  # fmt: skip


def _start_flusher(usage: Any, mode: list[str]) -> None:
    """ "on": the real flusher into SQLite; "record": records are drained and dropped."""
    from regolo.server.metrics.flusher import UsageFlusher
    from regolo.server.platform import USAGE_FLUSH_INTERVAL_SECONDS
    from regolo.server.store.database import Database
    from regolo.server.store.migrate import upgrade

    home = tempfile.mkdtemp(prefix="regolo-metrics-bench-")
    db = Database(f"sqlite:///{home}/regolo.db")
    upgrade(db.write_engine)
    flusher = UsageFlusher(db, usage)

    def run() -> None:
        while True:
            time.sleep(USAGE_FLUSH_INTERVAL_SECONDS)
            started, cpu = time.perf_counter(), time.thread_time()
            written = flusher.flush() if mode[0] == "on" else len(usage.drain())
            if written:
                print(
                    f"{mode[0]}: flushed {written} in {time.perf_counter() - started:.3f} s,"
                    f" {time.thread_time() - cpu:.3f} s CPU",
                    file=sys.stderr,
                )

    threading.Thread(target=run, daemon=True, name="metrics-flusher").start()


def run(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    up_port, port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    here = str(Path(__file__).resolve().parent)
    me = str(Path(__file__).resolve())
    procs = [
        start([f"{here}/fake_upstream.py", "--port", str(up_port)], args.upstream_cpus),
        start([me, "serve", "--port", str(port), "--upstream", upstream], args.gateway_cpus),
    ]
    gateway = psutil.Process(procs[1].pid)  # its threads (the flusher) count
    script = write_wrk_script()
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in MODES}
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        for each in (up_port, port):
            wait_open(each)
        for name in MODES:  # warm up every path
            _switch(port, name)
            wrk(url, 8, 2, args.load_cpus, script)
        time.sleep(3.5)
        for _ in range(args.rounds):
            for name in MODES:
                _switch(port, name)
                before = cpu_seconds(gateway)
                result = wrk(url, 32, args.duration, args.load_cpus, script)
                if name != "off":
                    time.sleep(3.5)  # let the flusher write this round's records
                used = cpu_seconds(gateway) - before
                cpu_us = us_per_request(used, result, args.duration)
                result["gateway_cpu_ms_per_request"] = round(cpu_us / 1000, 4)
                rounds[name].append(result)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        os.unlink(script)
    return summarise(rounds, args)


def _switch(port: int, mode: str) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/bench/mode/{mode}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 204


def summarise(
    rounds: dict[str, list[dict[str, float]]], args: argparse.Namespace
) -> dict[str, Any]:
    off = statistics.median(r["requests_per_second"] for r in rounds["off"])
    on = statistics.median(r["requests_per_second"] for r in rounds["on"])
    cpu_off = statistics.median(r["gateway_cpu_ms_per_request"] for r in rounds["off"])
    cpu_on = statistics.median(r["gateway_cpu_ms_per_request"] for r in rounds["on"])
    cpu_record = statistics.median(r["gateway_cpu_ms_per_request"] for r in rounds["record"])
    record = statistics.median(r["requests_per_second"] for r in rounds["record"])
    return {
        "cpus_available": os.cpu_count(),
        "load_average": os.getloadavg(),
        "gateway_cpus": args.gateway_cpus,
        "duration_seconds": args.duration,
        "rounds": rounds,
        "metrics_off_requests_per_second_c32": off,
        "metrics_on_requests_per_second_c32": on,
        "metrics_cost_share_throughput": round(1 - on / max(off, 1.0), 4),
        "metrics_off_gateway_cpu_ms_per_request": cpu_off,
        "metrics_on_gateway_cpu_ms_per_request": cpu_on,
        "metrics_cost_share_cpu": round(cpu_on / max(cpu_off, 1e-9) - 1, 4),
        "record_only_requests_per_second_c32": record,
        "record_only_gateway_cpu_ms_per_request": cpu_record,
        "record_only_cost_share_cpu": round(cpu_record / max(cpu_off, 1e-9) - 1, 4),
        "target_cost_share": 0.05,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    serve_cmd = sub.add_parser("serve")
    serve_cmd.add_argument("--port", type=int, required=True)
    serve_cmd.add_argument("--upstream", required=True)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gateway-cpus", default="0")
    parser.add_argument("--upstream-cpus", default=None)
    parser.add_argument("--load-cpus", default=None)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port, args.upstream)
        return
    args.upstream_cpus = args.upstream_cpus or other_cpus()
    args.load_cpus = args.load_cpus or other_cpus()
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
