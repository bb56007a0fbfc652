"""CPU runtime benchmark on the demo model: generation tokens/s at concurrency 1 and 4
(aggregate) and cold start (process start to /health ready), through each replica's
OpenAI HTTP API. Prints JSON.

    python benchmarks/runtime_cpu.py [--max-tokens 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from regolo.server.backends.local import LocalBackend
from regolo.server.demo import DEMO_MODEL_NAME, INSTALL_HINT, demo_gguf_path
from regolo.server.runtimes.registry import get_runtime
from regolo.server.specs import ModelArtifact, ReplicaHandle, ReplicaSpec

TOKEN = "bench-token"
PROMPT = "Write a short story about a robot who learns to paint."
READY_TIMEOUT_SECONDS = 300.0


def _runtimes() -> list[str]:
    names = ["llamacpp"]
    if importlib.util.find_spec("torch") is not None:
        try:
            importlib.import_module("regolo.server.runtimes.transformers")
            names.append("transformers")
        except ImportError:
            pass
    return names


async def _wait_ready(client: httpx.AsyncClient, address: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if (await client.get(f"{address}/health")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{address} not ready after {READY_TIMEOUT_SECONDS}s")


async def _one_request(
    client: httpx.AsyncClient, address: str, max_tokens: int, extra: dict[str, Any]
) -> int:
    body = {
        "model": DEMO_MODEL_NAME,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
        **extra,
    }
    response = await client.post(
        f"{address}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    response.raise_for_status()
    return int(response.json()["usage"]["completion_tokens"])


async def _tokens_per_second(
    client: httpx.AsyncClient,
    address: str,
    concurrency: int,
    rounds: int,
    max_tokens: int,
    extra: dict[str, Any],
) -> dict[str, float]:
    started = time.perf_counter()
    tokens = 0
    for _ in range(rounds):
        batch = [_one_request(client, address, max_tokens, extra) for _ in range(concurrency)]
        tokens += sum(await asyncio.gather(*batch))
    seconds = time.perf_counter() - started
    return {"tokens_per_second": round(tokens / seconds, 1), "completion_tokens": tokens}


async def bench_runtime(
    name: str, gguf: Path, home: Path, args: argparse.Namespace
) -> dict[str, Any]:
    runtime = get_runtime(name)
    artifact = ModelArtifact(path=str(gguf), format="gguf", served_model_name=DEMO_MODEL_NAME)
    spec = ReplicaSpec(
        replica_id=f"bench-{name}",
        deployment_id="bench",
        runtime=name,
        artifact=artifact,
        auth_token=TOKEN,
        options=(("parallel", "4"),) if name == "llamacpp" else (),
    )
    if not runtime.supports(artifact, spec.resources):
        return {"runtime": name, "skipped": "does not serve the demo GGUF model"}
    # llama.cpp would stop at end-of-text; a fixed length makes runs comparable.
    extra: dict[str, Any] = {"ignore_eos": True} if name == "llamacpp" else {}
    backend = LocalBackend(home)
    async with httpx.AsyncClient(timeout=600.0) as client:
        started = time.perf_counter()
        handle: ReplicaHandle = await backend.start(spec)
        try:
            await _wait_ready(client, handle.address)
            cold_start = time.perf_counter() - started
            await _one_request(client, handle.address, 8, extra)  # warm caches
            c1 = await _tokens_per_second(
                client, handle.address, 1, args.rounds, args.max_tokens, extra
            )
            c4 = await _tokens_per_second(
                client, handle.address, 4, args.rounds, args.max_tokens, extra
            )
        finally:
            await backend.close()
    return {
        "runtime": name,
        "cold_start_seconds": round(cold_start, 2),
        "concurrency_1": c1,
        "concurrency_4_aggregate": c4,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runtimes", default="", help="comma-separated; default: all found")
    args = parser.parse_args()
    # A SIGTERM (e.g. from `timeout`) unwinds through finally blocks, so replicas stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    gguf = demo_gguf_path()
    if gguf is None:
        raise SystemExit(f"demo model missing: {INSTALL_HINT}")
    results = []
    with tempfile.TemporaryDirectory() as home:
        for name in args.runtimes.split(",") if args.runtimes else _runtimes():
            try:
                results.append(await bench_runtime(name, gguf, Path(home), args))
            except Exception as error:  # one runtime failing must not hide the others
                results.append({"runtime": name, "error": f"{type(error).__name__}: {error}"})
    report = {
        "model": f"{DEMO_MODEL_NAME} ({gguf.name})",
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "cpu_cores": len(os.sched_getaffinity(0)),
        "machine": platform.processor() or platform.machine(),
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
