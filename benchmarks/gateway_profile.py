"""Where the gateway's CPU per request goes, next to the bare pass-through's, over sockets.

``gateway.py`` says how much slower the gateway is than the pass-through; this says
where the difference is spent. Each server runs under the same ``wrk`` load as there
(c32, pinned to one core) while ``py-spy`` samples it without pausing it
(``--nonblocking``); each sample is charged to the innermost Python frame, so time in
C (orjson, system calls, uvloop) counts against the Python line that called it, and
time with no Python frame at all (the event loop between callbacks) against
``event_loop``. Dividing by the requests served turns samples into microseconds per
request, by category:

- ``app``: the ASGI application itself: the gateway's chain, or the pass-through's
  single function;
- ``upstream_client``: ``regolo.server.gateway.upstream``, used by both;
- ``server``: uvicorn's HTTP protocol, the same for both;
- ``event_loop``: uvloop and asyncio, the same for both.

The sampler takes a share of a core of its own (run it on the load cores, as here),
so absolute figures read a little lower than ``gateway.py``'s; the comparison between
the two servers is what it is for.

    pip install py-spy
    python benchmarks/gateway_profile.py [--duration 10] [--rate 1000] > profile.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gateway import (
    free_port,
    other_cpus,
    parse_wrk,
    start,
    wait_open,
    write_wrk_script,
    wrk_command,
)

HERE = Path(__file__).resolve().parent
CATEGORIES = ("app", "upstream_client", "server", "event_loop", "other")


def category(leaf: str) -> str:
    """The category of a sample by its innermost frame, ``function (file:line)``."""
    if "regolo/server/gateway/upstream.py" in leaf:
        return "upstream_client"
    if "regolo/" in leaf or "(gateway.py:" in leaf or "(passthrough.py:" in leaf:
        return "app"
    if "uvicorn/" in leaf:
        return "server"
    if not leaf or "asyncio/" in leaf or "uvloop" in leaf:
        return "event_loop"
    return "other"


def summarise_samples(raw: str, requests: float, rate: int, top: int) -> dict[str, Any]:
    """Microseconds per request by category, and the app's costliest lines, from
    py-spy's raw output (one ``frame;frame;... count`` line per distinct stack)."""
    by_category: collections.Counter[str] = collections.Counter()
    app_lines: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.rpartition(";")[2]
        kind = category(leaf)
        by_category[kind] += int(count)
        if kind == "app":
            app_lines[leaf] += int(count)
    us_per_sample = 1e6 / rate

    def per_request(samples: int) -> float:
        return round(samples * us_per_sample / max(requests, 1.0), 2)

    return {
        "us_per_request": per_request(sum(by_category.values())),
        "by_category_us_per_request": {kind: per_request(by_category[kind]) for kind in CATEGORIES},
        "app_top_lines_us_per_request": {
            leaf: per_request(n) for leaf, n in app_lines.most_common(top)
        },
    }


def profile(
    name: str, port: int, pid: int, args: argparse.Namespace, script: str, out_dir: Path
) -> dict[str, Any]:
    """wrk at c32 for longer than the sampling window, py-spy inside it."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    load_seconds = args.duration + 3
    load = subprocess.Popen(
        wrk_command(url, 32, load_seconds, args.load_cpus, script), stdout=subprocess.PIPE
    )
    time.sleep(1.0)  # sample the steady state, not the connections opening
    raw_path = out_dir / f"{name}.txt"
    sampler = [args.py_spy, "record", "--pid", str(pid), "--rate", str(args.rate)]
    sampler += ["--duration", str(args.duration), "--nonblocking", "--format", "raw"]
    prefix = ["taskset", "-c", args.load_cpus] if args.load_cpus else []
    subprocess.run(
        [*prefix, *sampler, "--output", str(raw_path)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    served = parse_wrk(load.communicate()[0].decode())
    requests = served["requests_per_second"] * args.duration  # served in the window
    summary = summarise_samples(raw_path.read_text(), requests, args.rate, args.top)
    return {"requests_per_second": served["requests_per_second"]} | summary


def run(args: argparse.Namespace) -> dict[str, Any]:
    ports = {name: free_port() for name in ("upstream", "gateway", "passthrough")}
    upstream = f"http://127.0.0.1:{ports['upstream']}"
    procs = {
        "upstream": start(
            [f"{HERE}/fake_upstream.py", "--port", str(ports["upstream"])], args.upstream_cpus
        ),
        "gateway": start(
            [f"{HERE}/gateway.py", "serve-gateway", "--port", str(ports["gateway"]),
             "--upstream", upstream],
            args.gateway_cpus,
        ),
        "passthrough": start(
            [f"{HERE}/passthrough.py", "--port", str(ports["passthrough"]),
             "--upstream", upstream],
            args.gateway_cpus,
        ),
    }  # fmt: skip
    script = write_wrk_script()
    try:
        with tempfile.TemporaryDirectory(prefix="regolo-profile-") as out:
            for name in procs:
                wait_open(ports[name])
            results = {
                name: profile(name, ports[name], procs[name].pid, args, script, Path(out))
                for name in ("gateway", "passthrough")
            }
    finally:
        for name in ("gateway", "passthrough", "upstream"):  # the upstream last
            procs[name].terminate()
        for proc in procs.values():
            proc.wait(10)
        os.unlink(script)
    gateway, bare = (results[n]["by_category_us_per_request"] for n in ("gateway", "passthrough"))
    return {
        "gateway_cpus": args.gateway_cpus,
        "load_cpus": args.load_cpus,
        "duration_seconds": args.duration,
        "rate_hz": args.rate,
        "results": results,
        "gateway_extra_us_per_request": {
            kind: round(gateway[kind] - bare[kind], 2) for kind in CATEGORIES
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds sampled per server")
    parser.add_argument("--rate", type=int, default=1000, help="samples per second")
    parser.add_argument("--top", type=int, default=15, help="the app's costliest lines shown")
    parser.add_argument("--gateway-cpus", default="0")
    args = parser.parse_args()
    beside_python = Path(sys.executable).with_name("py-spy")  # a venv's, not on PATH
    args.py_spy = shutil.which("py-spy") or (beside_python.is_file() and str(beside_python))
    if not args.py_spy:
        sys.exit("py-spy is not installed: pip install py-spy")
    args.upstream_cpus = args.load_cpus = other_cpus()
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
